"""The one exception tree of alphalab.

Every error alphalab raises on purpose derives from :class:`AlphalabError` and also from the
built-in exception it refines, so ``except ValueError`` keeps working for callers that do not
know alphalab's types.
"""

from __future__ import annotations


class AlphalabError(Exception):
    """Root of every error alphalab raises on purpose."""


class ConfigError(AlphalabError, ValueError):
    """A setting, workflow file or component description is invalid."""


class NotFoundError(AlphalabError, LookupError):
    """A named thing (experiment, run, artifact, task, instrument...) does not exist."""


class DataError(AlphalabError, ValueError):
    """Market data is missing, malformed or does not cover what was asked for."""


class ExpressionError(AlphalabError, ValueError):
    """A feature expression cannot be parsed or compiled.

    Attributes:
        expression: The expression text.
        position: 0-based character offset of the problem, when known.
    """

    def __init__(self, message: str, expression: str = "", position: int | None = None):
        self.expression = expression
        self.position = position
        if expression:
            where = f" at position {position}" if position is not None else ""
            pointer = ""
            if position is not None:
                pointer = "\n  " + expression + "\n  " + " " * position + "^"
            message = f"{message} in expression {expression!r}{where}{pointer}"
        super().__init__(message)


class TrackingError(AlphalabError, RuntimeError):
    """The experiment tracking backend failed or was used out of order."""


class StoreError(AlphalabError, RuntimeError):
    """A persistent store (market data, task pool) could not be read or written."""


class MissingDependencyError(AlphalabError, ImportError):
    """An optional dependency is needed for this feature but is not installed."""


class ArtifactPathError(AlphalabError, ValueError):
    """An artifact name is not a relative path inside its run (e.g. ``../x`` or ``/etc/x``)."""


class InvalidMetricError(TrackingError, ValueError):
    """A metric, param or tag value cannot be logged (wrong type or invalid key)."""


class TaskError(AlphalabError, RuntimeError):
    """The task pool was used in a way it does not allow."""


class TaskStateError(TaskError, ValueError):
    """A task cannot move from its current status to the requested one."""


class TaskDefinitionError(TaskError, ValueError):
    """A task definition cannot be stored (not JSON-serialisable, not a mapping, ...)."""


class TuneError(AlphalabError, RuntimeError):
    """A tuning study could not run (no trial completed, a study clash, a missing metric)."""
