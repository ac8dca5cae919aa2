"""The training-curve hook between models and whoever watches them train.

Models live below the tracking layer, so they do not log to a run themselves: they report each
boosting round or epoch to :func:`report_training`. The tracking layer installs a default
reporter that logs into the active run; a tuner adds one with :func:`training_reporter` for
pruning. This module imports nothing heavy so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

#: ``reporter(step, {"train.l2": 0.1, "valid.l2": 0.2})``
TrainingReporter = Callable[[int, Mapping[str, float]], None]

_reporters: ContextVar[tuple[TrainingReporter, ...]] = ContextVar("reporters", default=())
_default_reporters: list[TrainingReporter] = []


@contextmanager
def training_reporter(reporter: TrainingReporter) -> Iterator[None]:
    """Send training curves to ``reporter`` while the block runs (nests with others)."""
    token = _reporters.set((*_reporters.get(), reporter))
    try:
        yield
    finally:
        _reporters.reset(token)


def add_default_reporter(reporter: TrainingReporter) -> None:
    """Install a process-wide reporter (used by the tracking layer to reach the active run)."""
    if reporter not in _default_reporters:
        _default_reporters.append(reporter)


def report_training(step: int, metrics: Mapping[str, float]) -> None:
    """Report one training step's metrics to every installed reporter."""
    if not metrics:
        return
    values = {k: float(v) for k, v in metrics.items()}
    for reporter in (*_default_reporters, *_reporters.get()):
        reporter(step, values)
