"""Running a tune study: the study's parent run, the tuners in order, worker processes.

``run_tune(config)`` opens (or, with ``resume``, reopens) the parent run in the tuning
experiment, then for each tuner creates or loads its Optuna study in the RDB storage and runs
trials until the study holds the tuner's budget: in this process (``workers=1``) or in
``workers`` spawned processes sharing the study. Afterwards it writes the best params, the
best config and the plots, and logs them as artifacts of the parent run.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from alphalab.config import get_settings, init
from alphalab.exceptions import ConfigError, TuneError
from alphalab.logging import get_logger
from alphalab.tracking import R
from alphalab.tune._config import TuneConfig, TunerSpec
from alphalab.tune._objective import ATTR_ERROR, ATTR_PARENT_RUN, TrialObjective, dump_workflow
from alphalab.tune._outputs import (
    best_summary,
    global_best,
    trials_frame,
    write_json,
    write_plots,
)
from alphalab.tune._space import set_paths
from alphalab.tune._study import (
    SlotLock,
    _safe_url,
    count_trials,
    make_pruner,
    make_sampler,
    open_storage,
    optuna_module,
    run_trials,
    slot,
    study_key,
    trial_budget,
)

if TYPE_CHECKING:
    import optuna

logger = get_logger(__name__)

#: ``progress(tuner_name, study)`` is called while trials run (about once a second).
ProgressFn = Callable[[str, "optuna.Study", int], None]


@dataclass(frozen=True)
class TunerResult:
    """One tuner's outcome."""

    name: str
    study_name: str
    n_trials: int
    states: Mapping[str, int]
    best: Mapping[str, Any] | None
    output_dir: Path


@dataclass(frozen=True)
class TuneResult:
    """A whole study's outcome: the tuners, the global best and where the files are."""

    study_name: str
    parent_run_id: str
    experiment_name: str
    storage: str
    tuners: tuple[TunerResult, ...]
    best: Mapping[str, Any] | None
    output_dir: Path
    best_config: Path | None
    artifacts: tuple[Path, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _WorkerSpec:
    """Everything a worker process needs (picklable)."""

    config: TuneConfig
    tuner_index: int
    base_overrides: Mapping[str, Any]
    parent_run_id: str
    storage_url: str
    settings: Mapping[str, Any]
    seed_offset: int


def _state_counts(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


@contextlib.contextmanager
def _quiet_inner_progress() -> Iterator[None]:
    """Turn off the models' own progress bars while the trial display is live."""
    previous = os.environ.get("ALPHALAB_PROGRESS")
    os.environ["ALPHALAB_PROGRESS"] = "0"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("ALPHALAB_PROGRESS", None)
        else:
            os.environ["ALPHALAB_PROGRESS"] = previous


def _load_or_create_study(
    config: TuneConfig,
    tuner: TunerSpec,
    storage: optuna.storages.RDBStorage,
    seed_offset: int,
) -> optuna.Study:
    optuna = optuna_module()
    name = study_key(config.study_name, tuner.name)
    direction = config.criterion.direction
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(tuner, seed_offset),
        pruner=make_pruner(tuner),
        direction=direction,
        load_if_exists=True,
    )
    if study.direction.name.lower() != direction:
        raise TuneError(
            f"Study {name!r} exists with direction {study.direction.name.lower()}, but the "
            f"criterion asks to {direction}; use another study name"
        )
    return study


def _worker_main(spec: _WorkerSpec) -> None:
    """Entry point of a worker process: run trials of one tuner until the budget is used."""
    parent_pid = os.getppid()

    def watch_parent() -> None:  # die with the coordinator, even when it is SIGKILLed
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(3)

    threading.Thread(target=watch_parent, daemon=True).start()
    os.environ["ALPHALAB_PROGRESS"] = "0"
    init(**spec.settings)
    get_logger("alphalab").setLevel("WARNING")
    config = spec.config
    tuner = config.tuners[spec.tuner_index]
    storage = open_storage(
        spec.storage_url,
        heartbeat_interval=config.heartbeat_interval,
        grace_period=config.grace_period,
        retry_stale=config.retry_stale,
    )
    optuna = optuna_module()
    study = optuna.load_study(
        study_name=study_key(config.study_name, tuner.name),
        storage=storage,
        sampler=make_sampler(tuner, spec.seed_offset),
        pruner=make_pruner(tuner),
    )
    lock = SlotLock(spec.storage_url, study.study_name)
    try:
        run_trials(
            study,
            lambda release: TrialObjective(
                config, tuner, spec.base_overrides, spec.parent_run_id, on_start=release
            ),
            trial_budget(tuner),
            lock,
            config.max_consecutive_failures,
        )
    finally:
        lock.close()


def _run_tuner(
    config: TuneConfig,
    index: int,
    base_overrides: Mapping[str, Any],
    parent_run_id: str,
    storage_url: str,
    workers: int,
    progress: ProgressFn | None,
) -> optuna.Study:
    tuner = config.tuners[index]
    storage = open_storage(
        storage_url,
        heartbeat_interval=config.heartbeat_interval,
        grace_period=config.grace_period,
        retry_stale=config.retry_stale,
    )
    optuna = optuna_module()
    name = study_key(config.study_name, tuner.name)
    previous = (
        len(optuna.load_study(study_name=name, storage=storage).trials)
        if name in optuna.get_all_study_names(storage)
        else 0
    )
    study = _load_or_create_study(config, tuner, storage, previous)
    if study.user_attrs.get(ATTR_PARENT_RUN) != parent_run_id:
        study.set_user_attr(ATTR_PARENT_RUN, parent_run_id)
    optuna.storages.fail_stale_trials(study)
    budget = trial_budget(tuner)
    if count_trials(study) >= budget:
        return study
    report = (lambda: progress(tuner.name, study, budget)) if progress else (lambda: None)
    report()
    if workers <= 1:
        lock = SlotLock(storage_url, study.study_name)
        try:
            run_trials(
                study,
                lambda release: TrialObjective(
                    config, tuner, base_overrides, parent_run_id, on_start=release
                ),
                budget,
                lock,
                config.max_consecutive_failures,
                on_trial=lambda _s, _t: report(),
            )
        finally:
            lock.close()
        return study
    settings = asdict(get_settings())
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=_worker_main,
            args=(
                _WorkerSpec(
                    config,
                    index,
                    dict(base_overrides),
                    parent_run_id,
                    storage_url,
                    settings,
                    previous + 1000 * (i + 1),
                ),
            ),
            name=f"alphalab-tune-{tuner.name}-{i}",
        )
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        while any(p.is_alive() for p in processes):
            report()
            time.sleep(1.0)
    except BaseException:
        for process in processes:
            process.terminate()
        raise
    finally:
        for process in processes:
            process.join()
    report()
    failed = [p.name for p in processes if p.exitcode not in (0, None)]
    if failed:
        logger.warning("Worker process(es) %s ended with an error", ", ".join(failed))
    return study


def _parent_run_id(config: TuneConfig, storage_url: str, resume: bool) -> str:
    """The id of the study's parent run, found in the studies or created.

    Creation happens under the study's lock together with the first tuner's study, so
    ``--resume`` started on several machines at once ends up with one parent run.

    Raises:
        TuneError: when the study exists and ``resume`` is False.
    """
    optuna = optuna_module()
    storage = open_storage(storage_url, heartbeat_interval=None)
    lock = SlotLock(storage_url, f"{config.study_name}#parent")
    try:
        with slot(lock):
            names = set(optuna.get_all_study_names(storage))
            existing = [
                study_key(config.study_name, t.name)
                for t in config.tuners
                if study_key(config.study_name, t.name) in names
            ]
            if existing and not resume:
                raise TuneError(
                    f"Study {existing[0]!r} already exists in the tuning storage; pass "
                    "--resume to continue it, or choose another study name (study.name in "
                    "the TUNE file)"
                )
            for name in existing:
                study = optuna.load_study(study_name=name, storage=storage)
                run_id = study.user_attrs.get(ATTR_PARENT_RUN)
                if run_id:
                    return str(run_id)
            exp = R.get_exp_manager().get_exp(experiment_name=config.experiment_name)
            run = exp.create_recorder(config.study_name)
            first = _load_or_create_study(config, config.tuners[0], storage, 0)
            first.set_user_attr(ATTR_PARENT_RUN, run.id)
            return run.id
    finally:
        lock.close()


def run_tune(
    config: TuneConfig,
    *,
    n_trials: int | None = None,
    workers: int = 1,
    storage: str | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
) -> TuneResult:
    """Run (or resume) every tuner of ``config`` and write the outputs.

    Args:
        config: The loaded TUNE file.
        n_trials: Trials per tuner, replacing the file's ``n_trials``.
        workers: Processes running trials in parallel (1: in this process).
        storage: Database URL of the studies (default: the file's, else ``task_uri``).
        resume: Continue existing studies (on this or another machine).
        progress: Called about once a second with the tuner name, its study and budget.

    Raises:
        TuneError: when a study exists and ``resume`` is False, or no trial of a tuner
            completed.
    """
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1; got {workers}")
    if n_trials is not None:
        config = config.with_n_trials(n_trials)
    settings = init(**config.settings)
    storage_url = get_settings(task_uri=storage or config.storage or settings.task_uri).task_uri
    summaries: list[dict[str, Any]] = []
    results: list[TunerResult] = []
    artifacts: list[Path] = []
    overrides: dict[str, Any] = {}
    parent_id = _parent_run_id(config, storage_url, resume)
    with (
        _quiet_inner_progress(),
        R.start(
            experiment_name=config.experiment_name, recorder_id=parent_id, resume=True
        ) as parent,
    ):
        parent.set_tags(
            **{
                "alphalab.tune.study": config.study_name,
                "alphalab.tune.storage": _safe_url(storage_url),
                "alphalab.tune.criterion": config.criterion.metric,
                "alphalab.tune.direction": config.criterion.direction,
            }
        )
        for index, tuner in enumerate(config.tuners):
            base = overrides if tuner.inherit_best else {}
            study = _run_tuner(config, index, base, parent.id, storage_url, workers, progress)
            folder = config.output_dir / tuner.name
            summary = best_summary(study, tuner.name)
            states = _state_counts(study)
            frame = trials_frame(study)
            folder.mkdir(parents=True, exist_ok=True)
            frame.to_csv(folder / "trials.csv", index=False)
            artifacts.append(folder / "trials.csv")
            if summary is None:
                raise TuneError(
                    f"No trial of tuner {tuner.name!r} completed ({_describe(states)}); "
                    f"first failure: {_first_failure(study)}"
                )
            artifacts.append(write_json(folder / "local_best_params.json", summary))
            artifacts.extend(write_plots(study, folder))
            summaries.append(summary)
            overrides = dict(summary["overrides"])
            parent.log_metrics(
                len(frame), **{f"best_value.{tuner.name}": float(summary["best_value"])}
            )
            results.append(
                TunerResult(tuner.name, study.study_name, len(frame), states, summary, folder)
            )
        best = global_best(summaries, config.criterion.direction)
        best_config = None
        if best is not None:
            artifacts.append(write_json(config.output_dir / "global_best_params.json", best))
            best_config = config.output_dir / "best_config.yaml"
            workflow = set_paths(config.workflow, best["overrides"])
            header = (
                f"# Best configuration of tune study {config.study_name!r}: trial "
                f"{best['best_trial']} of tuner {best['tuner']!r}, {config.criterion.metric} = "
                f"{best['best_value']}\n# Run it with: alphalab run {best_config.name}\n"
            )
            best_config.write_text(header + dump_workflow(workflow), encoding="utf-8")
            artifacts.append(best_config)
            parent.set_tags(
                **{
                    "alphalab.tune.best_value": str(best["best_value"]),
                    "alphalab.tune.best_run": str(best["run_id"]),
                    **{f"best.{k}": json.dumps(v) for k, v in best["overrides"].items()},
                }
            )
            parent.log_metrics(None, best_value=float(best["best_value"]))
        for path in artifacts:
            relative = path.parent.relative_to(config.output_dir)
            parent.log_artifact(path, "tune" if str(relative) == "." else f"tune/{relative}")
        parent_id = parent.id
    return TuneResult(
        study_name=config.study_name,
        parent_run_id=parent_id,
        experiment_name=config.experiment_name,
        storage=_safe_url(storage_url),
        tuners=tuple(results),
        best=best,
        output_dir=config.output_dir,
        best_config=best_config,
        artifacts=tuple(artifacts),
    )


def _describe(states: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items())) or "no trial"


def _first_failure(study: optuna.Study) -> str:
    optuna = optuna_module()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)):
        reason = trial.user_attrs.get(ATTR_ERROR)
        if reason:
            return str(reason).strip().splitlines()[-1]
    return "none recorded"


def study_trials(study_name: str, storage: str | None = None) -> dict[str, pd.DataFrame]:
    """Trials of a tune study (every tuner), or of one Optuna study given its full name.

    Raises:
        TuneError: when no study of that name is in the storage.
    """
    optuna = optuna_module()
    url = get_settings(task_uri=storage).task_uri if storage else get_settings().task_uri
    rdb = open_storage(url, heartbeat_interval=None)
    names = optuna.get_all_study_names(rdb)
    matches = [n for n in names if n == study_name or n.startswith(f"{study_name}/")]
    if not matches:
        known = ", ".join(sorted(names)) or "none"
        raise TuneError(
            f"No study {study_name!r} in the tuning storage {_safe_url(url)}; studies: {known}"
        )
    return {
        name: trials_frame(optuna.load_study(study_name=name, storage=rdb))
        for name in sorted(matches)
    }
