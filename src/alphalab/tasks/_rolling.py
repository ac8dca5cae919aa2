"""A rolling study in one call: generate windows -> train (via the pool) -> collect -> analyse.

The workflow file is an ordinary ``alphalab run`` file plus an optional ``rolling:`` section::

    rolling:
      step: 40              # trading days per test window
      rtype: expanding      # or sliding
      trunc_days: 2         # optional gap before each test start
      workers: 2            # worker processes to start (0: train in this process)
      pool: my-rolling      # task pool name (default: rolling-<experiment>)

Each window trains the task's model and ``SignalRecord`` in its own run; the windows'
predictions are merged with :class:`RollingEnsemble` (later windows win) into one run, where
the task's other records (``SigAnaRecord``, ``PortAnaRecord``...) analyse the whole period.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alphalab.config import ENV_VARS, Settings, fill_placeholders
from alphalab.exceptions import ConfigError, TaskError
from alphalab.logging import get_logger
from alphalab.tasks._collect import RecorderCollector, RollingGroup, SingleKeyEnsemble
from alphalab.tasks._collect import default_rec_key as _window_key
from alphalab.tasks._gen import RollingGen
from alphalab.tasks._manager import TaskManager, _progress
from alphalab.tasks._trainer import TrainerRM
from alphalab.tracking import R, Recorder
from alphalab.workflow import build_record, prepare_workflow

logger = get_logger(__name__)

ROLLING_KEYS = ("step", "rtype", "trunc_days", "workers", "pool")
_SIGNAL = {"class": "SignalRecord", "module_path": "alphalab.workflow"}


@dataclass(frozen=True)
class RollingOptions:
    """The ``rolling:`` section, validated."""

    step: int = 40
    rtype: str = "expanding"
    trunc_days: int | None = None
    workers: int = 0
    pool: str | None = None

    @classmethod
    def from_section(cls, section: Any, overrides: Mapping[str, Any]) -> RollingOptions:
        """Merge the file's ``rolling:`` section with explicit values (None: not given)."""
        if section is None:
            section = {}
        if not isinstance(section, Mapping):
            raise ConfigError(f"The 'rolling' section must be a mapping; got {section!r}")
        unknown = sorted(set(section) - set(ROLLING_KEYS))
        if unknown:
            raise ConfigError(
                f"Unknown key(s) {unknown} in the 'rolling' section; expected: "
                f"{', '.join(ROLLING_KEYS)}"
            )
        values = {**section, **{k: v for k, v in overrides.items() if v is not None}}
        workers = values.get("workers", 0)
        if not isinstance(workers, int) or workers < 0:
            raise ConfigError(f"rolling.workers must be an integer >= 0; got {workers!r}")
        return cls(**values)


@dataclass(frozen=True)
class RollingSummary:
    """What a rolling study produced."""

    run_id: str
    experiment_name: str
    pool: str
    window_run_ids: tuple[str, ...]
    test_windows: tuple[tuple[str, str], ...]
    metrics: Mapping[str, float] = field(default_factory=dict)


def _is_signal_record(config: Any) -> bool:
    name = config.get("class") if isinstance(config, Mapping) else str(config)
    return str(name).rsplit(".", 1)[-1] == "SignalRecord"


def _split_records(task: Mapping[str, Any]) -> tuple[list[Any], list[Any]]:
    records = task.get("record") or []
    if isinstance(records, str | Mapping):
        records = [records]
    signal = [r for r in records if _is_signal_record(r)] or [dict(_SIGNAL)]
    return signal, [r for r in records if not _is_signal_record(r)]


def worker_environment(settings: Settings, tracking_uri: str) -> dict[str, str]:
    """Environment that gives worker processes this process's settings."""
    env = dict(os.environ)
    values = {**asdict(settings), "tracking_uri": tracking_uri}
    for key, var in ENV_VARS.items():
        value = values.get(key)
        if value is None:
            env.pop(var, None)
        else:
            env[var] = str(value)
    return env


def start_workers(
    n: int, pool: str, task_uri: str, experiment_name: str, env: Mapping[str, str]
) -> list[subprocess.Popen[bytes]]:
    """Start ``n`` ``alphalab worker`` processes on ``pool`` (they exit when it is done)."""
    code = "import sys; from alphalab.cli import main; sys.argv[0] = 'alphalab'; main()"
    args = [sys.executable, "-c", code, "worker", "--pool", pool, "--uri", task_uri]
    args += ["--experiment", experiment_name]
    return [subprocess.Popen([*args], env=dict(env)) for _ in range(n)]


def _supervise(tm: TaskManager, procs: list[subprocess.Popen[bytes]], progress: bool) -> None:
    """Wait while worker processes are alive and the pool has work left."""
    if not procs:
        return
    with _progress(progress, f"pool {tm.task_pool}") as bar:
        while any(p.poll() is None for p in procs):
            stat = tm.task_stat()
            busy = stat.get("waiting", 0) + stat.get("running", 0)
            bar(sum(stat.values()) - busy, sum(stat.values()))
            if busy == 0:
                return
            time.sleep(0.5)


def run_rolling(
    path: str | Path,
    *,
    experiment_name: str | None = None,
    uri: str | None = None,
    task_uri: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    step: int | None = None,
    rtype: str | None = None,
    trunc_days: int | None = None,
    workers: int | None = None,
    pool: str | None = None,
    progress: bool = True,
) -> RollingSummary:
    """Run the rolling study described by a workflow file; see the module docstring.

    Raises:
        ConfigError: for an invalid workflow or rolling section (before any work).
        TaskError: when windows failed after their attempts (see ``alphalab tasks stat``).
    """
    prepared = prepare_workflow(path, overrides, uri)
    options = RollingOptions.from_section(
        prepared.raw.get("rolling"),
        {"step": step, "rtype": rtype, "trunc_days": trunc_days, "workers": workers, "pool": pool},
    )
    name = experiment_name or prepared.config.experiment_name or prepared.settings.experiment_name
    raw_task = prepared.raw["task"]
    task = fill_placeholders(
        dict(raw_task), root=raw_task, allow_unresolved=("MODEL", "DATASET", "PRED")
    )
    signal, analyses = _split_records(task)
    window_task = {**task, "record": signal}
    gen = RollingGen(step=options.step, rtype=options.rtype, trunc_days=options.trunc_days)
    tasks = gen.generate(window_task)
    pool_name = options.pool or f"rolling-{name}"
    tm = TaskManager(pool_name, task_uri or prepared.settings.task_uri)
    tm.create_task(tasks)
    logger.info(
        "Rolling study: %d windows of %d trading days in pool %s",
        len(tasks),
        options.step,
        pool_name,
    )
    procs = []
    if options.workers:
        env = worker_environment(prepared.settings, R.get_uri())
        procs = start_workers(options.workers, pool_name, tm.store.uri, name, env)
    try:
        _supervise(tm, procs, progress)
        # Trains here whatever the workers left (none unless a worker died), then collects.
        trainer = TrainerRM(name, pool_name, uri=tm.store.uri, progress=progress)
        recorders = trainer.end_train(trainer.train(tasks))
    finally:
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(timeout=10)
        failed_workers = [p.returncode for p in procs if p.returncode]
        if failed_workers:
            logger.warning("Worker processes exited with codes %s", failed_workers)
    if len(recorders) < len(tasks):
        raise TaskError(
            f"{len(tasks) - len(recorders)} of {len(tasks)} rolling windows failed; inspect "
            f"them with `alphalab tasks stat --pool {pool_name}`, then `alphalab tasks "
            f"retry-failed --pool {pool_name}` and run again (finished windows are reused)"
        )
    return _analyse(prepared, name, pool_name, recorders, analyses)


def _analyse(
    prepared: Any,
    experiment_name: str,
    pool_name: str,
    recorders: list[Recorder],
    analyses: list[Any],
) -> RollingSummary:
    ids = {r.id for r in recorders}
    collector = RecorderCollector(
        experiment_name,
        process_list=[RollingGroup(), SingleKeyEnsemble()],
        rec_filter_func=lambda r: r.id in ids,
        artifacts_path={"pred": "pred.pkl", "label": "label.pkl"},
    )
    collected = collector()
    ordered = sorted(recorders, key=lambda r: _window_key(r)[1])
    last = ordered[-1]
    model, dataset = last.load_object("params.pkl"), last.load_object("dataset")
    windows = tuple(_window_key(r)[1] for r in ordered)
    with R.start(
        experiment_name=experiment_name, recorder_name=f"{prepared.path.stem}-rolling"
    ) as recorder:
        recorder.set_tags(
            rolling_windows=str(len(ordered)),
            rolling_runs=",".join(r.id for r in ordered),
            task_pool=pool_name,
        )
        recorder.save_objects(
            **{"pred.pkl": collected["pred"], "label.pkl": collected["label"]},
            config=prepared.raw,
        )
        recorder.log_artifact(prepared.path, "workflow")
        for config in analyses:
            build_record(config, recorder, model, dataset).generate()
    metrics = R.get_recorder(recorder_id=recorder.id).list_metrics()
    return RollingSummary(
        run_id=recorder.id,
        experiment_name=experiment_name,
        pool=pool_name,
        window_run_ids=tuple(r.id for r in ordered),
        test_windows=windows,
        metrics=metrics,
    )
