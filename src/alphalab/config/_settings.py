"""Process settings: where data, runs and tasks live.

Precedence, highest first: an explicit argument to :func:`get_settings`, then values given to
:func:`init` (or ``alphalab.init``), then ``ALPHALAB_*`` environment variables, then defaults.
Defaults that name files are resolved against the working directory at resolution time, so
``import alphalab`` touches no file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from alphalab.config._uri import uri_scheme
from alphalab.exceptions import ConfigError
from alphalab.logging import get_logger

logger = get_logger(__name__)

Source = Literal["argument", "init", "environment", "default"]

#: The folder (under the working directory) holding the embedded default stores.
RUNS_DIR_NAME = "alphalab-runs"

REGIONS = ("cn", "us")

_TRACKING_SCHEMES = (
    "sqlite",
    "postgresql",
    "postgres",
    "postgresql+psycopg",
    "postgresql+psycopg2",
    "http",
    "https",
    "file",
)
_TASK_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")

#: Keys Qlib's ``qlib.init`` accepts that configure machinery alphalab does not have (caches
#: served by Redis, NFS mounting, a client/server mode). They are accepted and ignored, with a
#: warning, so a Qlib ``qlib_init`` section needs no edits.
QLIB_IGNORED_KEYS = frozenset(
    {
        "auto_mount",
        "calendar_cache",
        "calendar_provider",
        "dataset_cache",
        "dataset_provider",
        "dpm",
        "expression_cache",
        "expression_provider",
        "feature_provider",
        "flask_port",
        "flask_server",
        "instrument_provider",
        "joblib_backend",
        "local_cache_path",
        "logging_config",
        "maxtasksperchild",
        "mount_path",
        "provider",
        "redis_host",
        "redis_port",
        "redis_task_db",
        "timeout",
    }
)


@dataclass(frozen=True)
class Settings:
    """Resolved settings, passed down explicitly; never read from a global dict.

    Attributes:
        provider_uri: Market data location: an alphalab Parquet store or a Qlib data
            directory. None means the embedded simulated market.
        region: ``"cn"`` or ``"us"``; picks market conventions (limit threshold, trade unit).
        tracking_uri: MLflow tracking URI (SQLite, PostgreSQL or an ``http(s)`` server).
        artifact_location: Root folder/URI for run artifacts of new experiments.
        task_uri: Database of the task pool and tuning studies (SQLite or PostgreSQL).
        experiment_name: Experiment used when none is named.
        cache_dir: Folder for the feature cache and the generated simulated market.
        n_jobs: Worker threads for parallel computations (feature engine, LightGBM).
        log_level: Level of the ``alphalab`` loggers.
    """

    provider_uri: str | None
    region: str
    tracking_uri: str
    artifact_location: str
    task_uri: str
    experiment_name: str
    cache_dir: str
    n_jobs: int
    log_level: str

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with ``changes`` validated and applied."""
        return replace(self, **_validate(changes))


@dataclass(frozen=True)
class SettingsReport:
    """Settings together with where each value came from (for ``alphalab config``)."""

    settings: Settings
    sources: Mapping[str, Source]


#: Environment variable of each setting, declared in one place.
ENV_VARS: Mapping[str, str] = {f.name: f"ALPHALAB_{f.name.upper()}" for f in fields(Settings)}

_init_values: dict[str, Any] = {}


def _defaults(cwd: Path) -> dict[str, Any]:
    runs = cwd / RUNS_DIR_NAME
    return {
        "provider_uri": None,
        "region": "cn",
        "tracking_uri": f"sqlite:///{runs / 'mlflow.db'}",
        "artifact_location": str(runs / "artifacts"),
        "task_uri": f"sqlite:///{runs / 'tasks.db'}",
        "experiment_name": "Experiment",
        "cache_dir": str(runs / "cache"),
        "n_jobs": max(1, os.cpu_count() or 1),
        "log_level": "INFO",
    }


def _expand_path(value: str) -> str:
    return str(Path(value).expanduser().resolve())


def _normalize_store_uri(name: str, value: str, schemes: tuple[str, ...]) -> str:
    scheme = uri_scheme(value)
    if not scheme:
        # A plain folder path: keep an embedded SQLite store inside it.
        folder = Path(value).expanduser().resolve()
        filename = "mlflow.db" if name == "tracking_uri" else "tasks.db"
        return f"sqlite:///{folder / filename}"
    if scheme not in schemes:
        raise ConfigError(
            f"The {name!r} setting has an unsupported scheme {scheme!r} in {value!r}; "
            f"expected one of: {', '.join(schemes)} (or a folder path)"
        )
    return value


def _validate(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check and normalise setting values; raise ConfigError naming the offending key."""
    known = {f.name for f in fields(Settings)}
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"Unknown setting {key!r}; expected one of: {', '.join(sorted(known))}"
            )
        if key == "provider_uri":
            if value is None or value == "":
                out[key] = None
                continue
            if not isinstance(value, str | os.PathLike):
                raise ConfigError(f"The 'provider_uri' setting must be a path; got {value!r}")
            text = os.fspath(value)
            out[key] = text if uri_scheme(text) else _expand_path(text)
        elif key == "region":
            region = str(value).lower()
            if region not in REGIONS:
                raise ConfigError(f"The 'region' setting must be one of {REGIONS}; got {value!r}")
            out[key] = region
        elif key == "tracking_uri":
            out[key] = _normalize_store_uri(key, str(value), _TRACKING_SCHEMES)
        elif key == "task_uri":
            out[key] = _normalize_store_uri(key, str(value), _TASK_SCHEMES)
        elif key in ("artifact_location", "cache_dir"):
            text = str(value)
            out[key] = text if uri_scheme(text) else _expand_path(text)
        elif key == "n_jobs":
            try:
                n_jobs = int(value)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"The 'n_jobs' setting must be an integer; got {value!r}"
                ) from None
            if n_jobs < 1:
                raise ConfigError(f"The 'n_jobs' setting must be >= 1; got {value!r}")
            out[key] = n_jobs
        elif key == "experiment_name":
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(
                    f"The 'experiment_name' setting must be a non-empty string; got {value!r}"
                )
            out[key] = value
        elif key == "log_level":
            level = str(value).upper()
            if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
                raise ConfigError(
                    "The 'log_level' setting must be DEBUG, INFO, WARNING, ERROR or CRITICAL; "
                    f"got {value!r}"
                )
            out[key] = level
    return out


def translate_qlib_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Map ``qlib.init``-style keywords onto alphalab setting names.

    Accepts ``provider_uri`` (a path, or Qlib's ``{freq: path}`` mapping, of which ``day``
    is used), ``region``, ``exp_manager`` (``{"kwargs": {"uri", "default_exp_name"}}``),
    ``kernels`` and ``logging_level``; Qlib's cache/server keys are ignored with a warning.
    """
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key == "provider_uri" and isinstance(value, Mapping):
            if "day" not in value:
                raise ConfigError(
                    "A 'provider_uri' mapping must have a 'day' entry (alphalab serves daily "
                    f"data); got keys {sorted(value)}"
                )
            out["provider_uri"] = value["day"]
        elif key == "exp_manager":
            if not isinstance(value, Mapping):
                raise ConfigError(f"'exp_manager' must be a mapping; got {value!r}")
            manager_kwargs = value.get("kwargs", {}) or {}
            if "uri" in manager_kwargs:
                out["tracking_uri"] = manager_kwargs["uri"]
            if "default_exp_name" in manager_kwargs:
                out["experiment_name"] = manager_kwargs["default_exp_name"]
        elif key == "kernels":
            out["n_jobs"] = value
        elif key == "logging_level":
            out["log_level"] = value
        elif key in QLIB_IGNORED_KEYS:
            logger.warning("Ignoring the Qlib setting %r: alphalab has no equivalent.", key)
        else:
            out[key] = value
    return out


def init(**settings: Any) -> Settings:
    """Set process-wide settings (alphalab's ``qlib.init``) and return the resolved result.

    Values given here win over ``ALPHALAB_*`` environment variables and defaults; later
    calls replace earlier ones key by key. Qlib's keyword names are accepted too.

    Raises:
        ConfigError: for an unknown key or an invalid value; nothing is changed then.
    """
    validated = _validate(translate_qlib_kwargs(settings))
    _init_values.update(validated)
    resolved = get_settings()
    get_logger("alphalab").setLevel(resolved.log_level)
    return resolved


def reset() -> None:
    """Forget values given to :func:`init` (mainly for tests)."""
    _init_values.clear()


def resolve_settings(**explicit: Any) -> SettingsReport:
    """Resolve settings with their sources; see the module docstring for precedence."""
    layers: list[tuple[Source, dict[str, Any]]] = [
        ("default", _defaults(Path.cwd())),
        ("environment", _from_environment()),
        ("init", dict(_init_values)),
        ("argument", _validate(translate_qlib_kwargs(explicit))),
    ]
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for source, layer in layers:
        for key, value in layer.items():
            values[key] = value
            sources[key] = source
    return SettingsReport(settings=Settings(**values), sources=sources)


def get_settings(**explicit: Any) -> Settings:
    """Return the resolved settings; keyword arguments win over everything else."""
    return resolve_settings(**explicit).settings


def _from_environment() -> dict[str, Any]:
    raw = {key: os.environ[var] for key, var in ENV_VARS.items() if os.environ.get(var)}
    try:
        return _validate(raw)
    except ConfigError as e:
        raise ConfigError(f"Invalid ALPHALAB_* environment variable: {e}") from None
