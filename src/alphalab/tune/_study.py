"""Optuna studies in the RDB storage: storage, samplers, pruners and the trial-slot lock.

Each tuner of a pipeline is one Optuna study named ``<study>/<tuner>`` in the database of
``task_uri`` (SQLite or PostgreSQL), so worker processes on one machine and on many share it.
A worker takes a trial slot under a lock (a file lock beside a SQLite database, an advisory
lock in PostgreSQL) so that the studies end with exactly ``n_trials`` trials.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alphalab._imports import import_optional
from alphalab.config import is_postgres_uri, sqlalchemy_url, sqlite_path
from alphalab.exceptions import ConfigError, StoreError
from alphalab.logging import get_logger
from alphalab.tracking import R, RecorderStatus
from alphalab.tune._config import TunerSpec
from alphalab.tune._objective import ATTR_RUN_ID

if TYPE_CHECKING:
    import optuna

logger = get_logger(__name__)

#: Trial states that use up a tuner's budget (WAITING trials are retries not yet run).
COUNTED_STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING")


def optuna_module() -> Any:
    """Import optuna quietly (its experimental-feature warnings are expected here)."""
    optuna = import_optional("optuna", "tune", "hyperparameter tuning")
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def study_key(study_name: str, tuner: str) -> str:
    """The Optuna study name of one tuner of a tune study."""
    return f"{study_name}/{tuner}"


def _mark_run_killed(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Stale-trial callback: the trial's worker died, so end its run KILLED."""
    run_id = trial.user_attrs.get(ATTR_RUN_ID)
    logger.warning(
        "Trial %d of %s lost its worker (no heartbeat); marked failed",
        trial.number,
        study.study_name,
    )
    if not run_id:
        return
    try:
        run = R.get_exp_manager().get_recorder(run_id)
        if run.status is RecorderStatus.RUNNING:
            run.set_tags(**{"alphalab.tune.state": "FAIL", "alphalab.error": "worker died"})
            run.end_run(RecorderStatus.KILLED)
    except Exception as e:  # the trial is already failed; the run is only bookkeeping
        logger.error("Could not end run %s of a stale trial: %s", run_id, e)


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = 10,
    grace_period: int | None = None,
    retry_stale: int = 0,
) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage on ``url`` with heartbeats, and stale trials failed (and retried).

    Raises:
        ConfigError: for a URL that is neither SQLite nor PostgreSQL.
        StoreError: when the database cannot be opened.
    """
    opt = optuna_module()
    db = sqlite_path(url)
    if db is None and not is_postgres_uri(url):
        raise ConfigError(
            f"The tuning storage must be a sqlite:/// or postgresql:// URL; got {url!r}"
        )
    engine_kwargs: dict[str, Any] = {}
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        engine_kwargs["pool_pre_ping"] = True
    retry = opt.storages.RetryHeartbeatStaleTrialCallback(max_retry=retry_stale)

    def on_stale(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        _mark_run_killed(study, trial)
        if retry_stale > 0:
            retry(study, trial)

    try:
        return opt.storages.RDBStorage(
            sqlalchemy_url(url),
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=on_stale if heartbeat_interval else None,
        )
    except Exception as e:
        raise StoreError(f"Cannot open the tuning storage {_safe_url(url)}: {e}") from e


def _safe_url(url: str) -> str:
    """``url`` without a password."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}{sep}{user}@{host}"
    return url


def make_sampler(tuner: TunerSpec, seed_offset: int) -> optuna.samplers.BaseSampler:
    """The tuner's sampler; a configured ``seed`` is shifted per worker and per resume."""
    optuna = optuna_module()
    kwargs = dict(tuner.sampler_kwargs)
    seed = kwargs.pop("seed", None)
    if seed is not None:
        seed = int(seed) + seed_offset
    try:
        if tuner.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed, **kwargs)
        if tuner.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed, **kwargs)
        if tuner.sampler == "cmaes":
            import_optional("cmaes", "tune", "the CMA-ES sampler")
            return optuna.samplers.CmaEsSampler(seed=seed, **kwargs)
        grid = {path: space.grid() for path, space in tuner.space.items()}
        return optuna.samplers.GridSampler(grid, seed=seed, **kwargs)
    except TypeError as e:
        raise ConfigError(f"tuner {tuner.name!r}: invalid sampler option: {e}") from None


def make_pruner(tuner: TunerSpec) -> optuna.pruners.BasePruner:
    """The tuner's pruner (median, hyperband or none)."""
    optuna = optuna_module()
    try:
        if tuner.pruner == "median":
            return optuna.pruners.MedianPruner(**tuner.pruner_kwargs)
        if tuner.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(**tuner.pruner_kwargs)
        return optuna.pruners.NopPruner()
    except TypeError as e:
        raise ConfigError(f"tuner {tuner.name!r}: invalid pruner option: {e}") from None


def trial_budget(tuner: TunerSpec) -> int:
    """How many trials the tuner runs in total (a grid has at most its size)."""
    if tuner.sampler != "grid":
        return tuner.n_trials
    size = 1
    for space in tuner.space.values():
        size *= len(space.grid())
    return min(tuner.n_trials, size)


def count_trials(study: optuna.Study) -> int:
    """Trials that use up the budget: finished or running.

    A failed trial that was retried does not count: its retry takes its place.
    """
    trials = study.get_trials(deepcopy=False)
    replaced = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    return sum(
        1
        for t in trials
        if t.state.name in COUNTED_STATES and not (t.state.name == "FAIL" and t.number in replaced)
    )


# ----- trial slots ---------------------------------------------------------------------------


class SlotLock:
    """A lock shared by every worker of a study (on this machine or, with PostgreSQL, any)."""

    def __init__(self, storage_url: str, study: str) -> None:
        digest = hashlib.sha1(study.encode("utf-8")).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)
        self._url = storage_url
        self._file_lock: Any = None
        self._connection: Any = None
        self._engine: Any = None
        db = sqlite_path(storage_url)
        if db is not None:
            from filelock import FileLock

            self._file_lock = FileLock(
                str(Path(db).with_name(f".{db.name}.{digest.hex()[:12]}.lock"))
            )

    def acquire(self) -> None:
        """Block until this worker holds the lock."""
        if self._file_lock is not None:
            self._file_lock.acquire()
            return
        import sqlalchemy

        if self._connection is None:
            self._engine = sqlalchemy.create_engine(
                sqlalchemy_url(self._url), poolclass=sqlalchemy.pool.NullPool
            )
            self._connection = self._engine.connect()
        self._connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self._key})
        self._connection.commit()

    def release(self) -> None:
        """Let the next worker in."""
        if self._file_lock is not None:
            self._file_lock.release()
            return
        import sqlalchemy

        self._connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
        self._connection.commit()

    def close(self) -> None:
        """Drop the database connection (an advisory lock dies with it)."""
        if self._connection is not None:
            self._connection.close()
            self._engine.dispose()
            self._connection = None


@contextlib.contextmanager
def slot(lock: SlotLock) -> Iterator[Callable[[], None]]:
    """Hold the lock until the returned ``release`` is called (or the block ends)."""
    lock.acquire()
    held = True

    def release() -> None:
        nonlocal held
        if held:
            held = False
            lock.release()

    try:
        yield release
    finally:
        release()


def run_trials(
    study: optuna.Study,
    make_objective: Callable[[Callable[[], None]], Callable[[Any], float]],
    budget: int,
    lock: SlotLock,
    max_consecutive_failures: int | None,
    on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
) -> int:
    """Run trials one at a time until the study holds ``budget`` of them; return how many ran.

    The slot is taken under ``lock`` and released once the new trial exists, so concurrent
    workers never overshoot the budget. A trial that raises is recorded as failed and the
    worker goes on, unless ``max_consecutive_failures`` trials in a row failed.
    """
    opt = optuna_module()
    ran = 0
    failures = 0
    finished: list[Any] = []

    def record(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        finished.append(trial)
        if on_trial is not None:
            on_trial(study, trial)

    while True:
        with slot(lock) as release:
            if count_trials(study) >= budget:
                return ran
            finished.clear()
            study.optimize(
                make_objective(release), n_trials=1, catch=(Exception,), callbacks=[record]
            )
        ran += 1
        failed = bool(finished) and finished[-1].state == opt.trial.TrialState.FAIL
        failures = failures + 1 if failed else 0
        if max_consecutive_failures and failures >= max_consecutive_failures:
            logger.error(
                "%d trials in a row failed in %s; this worker stops", failures, study.study_name
            )
            return ran
