"""alphalab's side of each benchmark step; run by ``run.py`` as one subprocess per measurement.

Usage (internal): ``python steps_alphalab.py STEP SPEC.json OUT.json``. The spec names the
market (Parquet store and Qlib directory), the window and where to write outputs; the result
JSON holds ``seconds`` (the timed section) and optional ``phases`` and ``metrics``. Values
that the harness compares with Qlib's are written as ``.npz`` files (no pickles: the two
environments may run different pandas versions).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness  # this folder is on sys.path: the script runs from it
import light_task
import numpy as np
import pandas as pd
from npz_frames import load_frame, save_frame, save_rolling

FIELDS = ["open", "high", "low", "close", "volume", "vwap"]


def _init(spec: dict[str, Any], tracking: Path | None = None) -> None:
    """Settings for a step: the benchmark's store, an empty feature cache (first-run cost)."""
    import alphalab

    cache = tempfile.mkdtemp(prefix="cache-", dir=spec["out_dir"])
    atexit.register(shutil.rmtree, cache, True)
    kwargs: dict[str, Any] = {
        "provider_uri": spec["store"],
        "cache_dir": cache,
        "n_jobs": spec.get("threads", 2),
    }
    if tracking is not None:
        kwargs["tracking_uri"] = f"sqlite:///{tracking / 'mlflow.db'}"
        kwargs["artifact_location"] = str(tracking / "artifacts")
    alphalab.init(**kwargs)


def step_data(spec: dict[str, Any]) -> dict[str, Any]:
    """Read six fields for every stock of the universe over the whole window."""
    from alphalab.data import ParquetMarketStore

    store = ParquetMarketStore(spec["store"])
    codes = list(spec["codes"])
    store.calendar_array()  # metadata loaded before timing, as Qlib's calendar is
    began = time.perf_counter()
    frame = store.read(FIELDS, codes, spec["start"], spec["end"])
    seconds = time.perf_counter() - began
    sample = frame.filter(frame["instrument"].is_in(spec["sample_codes"])).to_pandas()
    sample = sample.set_index(["datetime", "instrument"])[FIELDS]
    save_frame(Path(spec["out_dir"]) / "data_alphalab.npz", sample)
    return {"seconds": seconds, "rows": frame.height}


def step_features(spec: dict[str, Any]) -> dict[str, Any]:
    """Alpha158 handler with no feature cache: load, compute, run the processors."""
    from alphalab.data import Alpha158

    _init(spec)
    began = time.perf_counter()
    handler = Alpha158(
        instruments=spec["universe"],
        start_time=spec["start"],
        end_time=spec["end"],
        fit_start_time=spec["segments"]["train"][0],
        fit_end_time=spec["segments"]["train"][1],
        cache=False,
    )
    handler.setup_data()
    seconds = time.perf_counter() - began
    frame = handler.fetch(selector=spec["sample_codes"], level="instrument", col_set="feature")
    save_frame(Path(spec["out_dir"]) / "features_alphalab.npz", frame)
    return {"seconds": seconds, "rows": len(handler.fetch(col_set="label"))}


def _signal(spec: dict[str, Any]) -> pd.DataFrame:
    frame = load_frame(spec["signal"])
    return frame


def step_signal(spec: dict[str, Any]) -> dict[str, Any]:
    """IC and Rank IC by date of the shared predictions (SigAnaRecord's computation)."""
    from alphalab.evaluate import calc_ic

    signal = _signal(spec)
    began = time.perf_counter()
    ic, ric = calc_ic(signal["score"], signal["label"])
    seconds = time.perf_counter() - began
    save_frame(
        Path(spec["out_dir"]) / "signal_alphalab.npz",
        pd.DataFrame({"ic": ic, "ric": ric})
        .rename_axis("datetime")
        .assign(instrument="-")
        .set_index("instrument", append=True),
    )
    return {"seconds": seconds, "metrics": {"IC": float(ic.mean()), "Rank IC": float(ric.mean())}}


def step_backtest(spec: dict[str, Any]) -> dict[str, Any]:
    """TopkDropout(50, 5) backtest of the shared predictions, market loading included."""
    from alphalab.data import ParquetMarketStore
    from alphalab.evaluate import MarketData, TopkDropoutStrategy, backtest

    signal = _signal(spec)
    bt = spec["backtest"]
    store = ParquetMarketStore(spec["store"])
    began = time.perf_counter()
    codes = sorted(signal.index.get_level_values("instrument").unique())
    fields = [
        f
        for f in ("close", "open", "vwap", "change", "factor", "volume", "high", "low")
        if f in store.fields()
    ]
    frame = store.read(
        fields, [*codes, spec["benchmark"]], bt["start_time"], bt["end_time"], future=1
    )
    market = MarketData.from_frame(frame, benchmark=spec["benchmark"])
    strategy = TopkDropoutStrategy(signal=signal["score"], topk=50, n_drop=5)
    result = backtest(
        strategy,
        market,
        start_time=bt["start_time"],
        end_time=bt["end_time"],
        account=bt["account"],
        benchmark=spec["benchmark"],
        exchange_kwargs=bt["exchange_kwargs"],
    )
    analysis = result.port_analysis()
    seconds = time.perf_counter() - began
    report = result.report[["return", "cost", "bench", "turnover"]].copy()
    report.index = pd.MultiIndex.from_arrays(
        [pd.DatetimeIndex(report.index), ["-"] * len(report)], names=["datetime", "instrument"]
    )
    save_frame(Path(spec["out_dir"]) / "backtest_alphalab.npz", report)
    risk = analysis["risk"]
    return {
        "seconds": seconds,
        "metrics": {
            "annualized_return": float(risk[("excess_return_with_cost", "annualized_return")]),
        },
    }


def step_workflow(spec: dict[str, Any]) -> dict[str, Any]:
    """The demo workflow end to end through ``run_workflow`` (what ``alphalab run`` calls)."""
    from alphalab.workflow import run_workflow

    tracking = Path(spec["tracking_dir"])  # created (migrated) by the harness beforehand
    _init(spec, tracking)
    began = time.perf_counter()
    summary = run_workflow(
        spec["workflow_yaml"], experiment_name="bench", uri=f"sqlite:///{tracking / 'mlflow.db'}"
    )
    seconds = time.perf_counter() - began
    metrics = dict(summary.metrics)
    return {"seconds": seconds, "phases": dict(summary.phases), "metrics": metrics}


def step_tracking_log(spec: dict[str, Any]) -> dict[str, Any]:
    """``R.log_metrics`` once per step for N steps, then the run ends (flushes); all checked."""
    import alphalab
    from alphalab.tracking import R

    tracking = Path(tempfile.mkdtemp(prefix="runs-", dir=spec["out_dir"]))
    uri = f"sqlite:///{tracking / 'mlflow.db'}"
    alphalab.init(tracking_uri=uri, artifact_location=str(tracking / "artifacts"))
    with R.start(experiment_name="bench", recorder_name="warm-up"):
        pass  # the store's creation (schema migrations) is not what is measured
    n = int(spec["tracking_steps"])
    began = time.perf_counter()
    with R.start(experiment_name="bench", recorder_name="log") as recorder:
        for step in range(n):
            R.log_metrics(step=step, loss=1.0 / (step + 1))
    seconds = time.perf_counter() - began
    stored = len(recorder.metric_history("loss"))
    return {"seconds": seconds, "metrics": {"points": stored}}


def step_tracking_empty(spec: dict[str, Any]) -> dict[str, Any]:
    """Start and end N empty runs with ``R.start``."""
    import alphalab
    from alphalab.tracking import R

    tracking = Path(tempfile.mkdtemp(prefix="runs-", dir=spec["out_dir"]))
    uri = f"sqlite:///{tracking / 'mlflow.db'}"
    alphalab.init(tracking_uri=uri, artifact_location=str(tracking / "artifacts"))
    with R.start(experiment_name="bench", recorder_name="warm-up"):
        pass
    n = int(spec["empty_runs"])
    began = time.perf_counter()
    for i in range(n):
        with R.start(experiment_name="bench", recorder_name=f"empty-{i}"):
            pass
    return {"seconds": time.perf_counter() - began}


# --- tasks: a rolling study ---------------------------------------------------------------


def _tracking_store(spec: dict[str, Any]) -> Path:
    """A fresh SQLite tracking store, ready before timing, and the settings pointing to it.

    The store is a copy of an empty one the harness migrated once (MLflow's schema
    migrations take seconds and happen once per store, not per run).
    """
    from alphalab.tracking import get_client

    tracking = Path(tempfile.mkdtemp(prefix="runs-", dir=spec["out_dir"]))
    atexit.register(shutil.rmtree, tracking, True)
    if spec.get("tracking_template"):
        shutil.copyfile(spec["tracking_template"], tracking / "mlflow.db")
    get_client(f"sqlite:///{tracking / 'mlflow.db'}")  # migrates it when there is no template
    _init(spec, tracking)
    return tracking


def step_tasks(spec: dict[str, Any]) -> dict[str, Any]:
    """RollingGen(sliding) + TrainerR + RecorderCollector(RollingGroup), in this process."""
    from alphalab.tasks import RecorderCollector, RollingGen, RollingGroup, TrainerR

    _tracking_store(spec)
    seconds, phases, windows, collected = light_task.run_rolling(
        light_task.rolling_task(spec, "alphalab"),
        int(spec["rolling_step"]),
        RollingGen,
        TrainerR,
        lambda: RecorderCollector("rolling", process_list=RollingGroup())(),
    )
    saved = save_rolling(Path(spec["out_dir"]) / "tasks_alphalab.npz", collected)
    return {"seconds": seconds, "phases": phases, "metrics": {"windows": windows, **saved}}


def _worker_env() -> dict[str, str]:
    """This process's settings as ``ALPHALAB_*`` variables, for worker processes."""
    from dataclasses import asdict

    from alphalab.config import ENV_VARS, get_settings

    env = dict(os.environ)
    for key, value in asdict(get_settings()).items():
        if key in ENV_VARS and value is not None:
            env[ENV_VARS[key]] = str(value)
    return env


def step_tasks_pool(spec: dict[str, Any]) -> dict[str, Any]:
    """The same windows through a SQLite task pool trained by two ``alphalab worker``s."""
    from alphalab.tasks import (
        RecorderCollector,
        RollingGen,
        RollingGroup,
        TaskManager,
        TrainerRM,
    )

    tracking = _tracking_store(spec)
    task_uri = f"sqlite:///{tracking / 'tasks.db'}"
    task = light_task.rolling_task(spec, "alphalab")
    worker = [sys.executable, "-c", "import sys; from alphalab.cli import main; main()"]
    worker += ["worker", "--pool", "rolling", "--uri", task_uri, "--experiment", "rolling"]
    began = time.perf_counter()
    tasks = RollingGen(step=int(spec["rolling_step"]), rtype=RollingGen.ROLL_SD).generate(task)
    TaskManager("rolling", task_uri).create_task(tasks)  # the store is created here
    env = _worker_env()
    procs = [subprocess.Popen(worker, env=env) for _ in range(2)]
    trainer = TrainerRM(
        "rolling", "rolling", skip_run_task=True, uri=task_uri, poll_interval=0.2, progress=False
    )
    recorders = trainer.end_train(trainer.train(tasks))
    collected = RecorderCollector("rolling", process_list=RollingGroup())()
    seconds = time.perf_counter() - began
    codes = [p.wait() for p in procs]
    if any(codes):
        raise RuntimeError(f"worker processes exited with {codes}")
    metrics = {
        "windows": len(recorders),
        **save_rolling(Path(spec["out_dir"]) / "tasks_pool_alphalab.npz", collected),
    }
    return {"seconds": seconds, "metrics": metrics}


# --- tune: tracked trials against Optuna alone -------------------------------------------


def _tune_workflow(spec: dict[str, Any]) -> dict[str, Any]:
    """The tuned workflow: the light dataset and a small LightGBM, scored by the test IC."""
    return {
        "qlib_init": {"provider_uri": spec["store"]},
        "experiment_name": "bench",
        "task": {
            "model": light_task.tune_model(spec, "alphalab"),
            "dataset": light_task.dataset_config(spec, "alphalab"),
            "record": [],
        },
    }


def _tune_space() -> dict[str, dict[str, Any]]:
    return {
        path: {"type": "float" if log else "int", "low": low, "high": high, "log": log}
        for path, low, high, log in light_task.TUNE_SPACE
    }


def _trial_seconds(study: Any) -> float:
    durations = [t.duration.total_seconds() for t in study.trials if t.duration is not None]
    return float(np.mean(durations)) if durations else float("nan")


def step_tune(spec: dict[str, Any]) -> dict[str, Any]:
    """``run_tune``: N TPE trials, each a child run (params, curve, pred/label, IC), outputs."""
    import optuna

    from alphalab.tune import parse_tune_config, run_tune

    tracking = _tracking_store(spec)
    storage = f"sqlite:///{tracking / 'study.db'}"
    config = parse_tune_config(
        {
            **_tune_workflow(spec),
            "experiment": {"name": "tune", "output_dir": str(tracking / "tune")},
            "study": {"name": "bench", "storage": storage},
            "optimization_criteria": {"metric": "IC", "direction": "max"},
            "trial_records": "needed",
            "tuner_pipeline": [
                {
                    "name": "model",
                    "n_trials": int(spec["tune_trials"]),
                    "sampler": {"type": "tpe", "seed": 0},
                    "pruner": "none",
                    "space": _tune_space(),
                }
            ],
        }
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    began = time.perf_counter()
    result = run_tune(config)
    seconds = time.perf_counter() - began
    study = optuna.load_study(study_name=result.tuners[0].study_name, storage=storage)
    best = result.best or {}
    return {
        "seconds": seconds,
        "metrics": {
            "best_value": float(best.get("best_value", float("nan"))),
            "trials": len(study.trials),
            "trial_seconds": _trial_seconds(study),
            "params": [t.params for t in study.trials],
            "values": [t.value for t in study.trials],
        },
    }


def step_tune_optuna(spec: dict[str, Any]) -> dict[str, Any]:
    """Optuna alone: the same space, sampler seed and training + IC, nothing tracked."""
    import optuna

    from alphalab.config import init_instance_by_config
    from alphalab.evaluate import signal_analysis
    from alphalab.tune import set_paths
    from alphalab.workflow import raw_label

    _init(spec)
    folder = Path(tempfile.mkdtemp(prefix="optuna-", dir=spec["out_dir"]))
    atexit.register(shutil.rmtree, folder, True)
    workflow = _tune_workflow(spec)
    space = light_task.TUNE_SPACE

    def objective(trial: optuna.Trial) -> float:
        values: dict[str, Any] = {}
        for path, low, high, log in space:
            if log:
                values[path] = trial.suggest_float(path, low, high, log=True)
            else:
                values[path] = trial.suggest_int(path, int(low), int(high))
        task = set_paths(workflow, values)["task"]
        model = init_instance_by_config(task["model"], "alphalab.model")
        dataset = init_instance_by_config(task["dataset"], "alphalab.data")
        dataset.setup_data()
        model.fit(dataset)
        pred = model.predict(dataset)  # what SignalRecord + SigAnaRecord compute
        label = raw_label(dataset)
        return float(signal_analysis(pred, label.iloc[:, 0]).metrics["IC"])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    began = time.perf_counter()
    study = optuna.create_study(
        study_name="bench",
        storage=f"sqlite:///{folder / 'study.db'}",
        sampler=optuna.samplers.TPESampler(seed=0),
        direction="maximize",
    )
    study.optimize(objective, n_trials=int(spec["tune_trials"]))
    seconds = time.perf_counter() - began
    return {
        "seconds": seconds,
        "metrics": {
            "best_value": float(study.best_value),
            "trials": len(study.trials),
            "trial_seconds": _trial_seconds(study),
            "params": [t.params for t in study.trials],
            "values": [t.value for t in study.trials],
        },
    }


STEPS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "data": step_data,
    "features": step_features,
    "signal": step_signal,
    "backtest": step_backtest,
    "workflow": step_workflow,
    "tracking_log": step_tracking_log,
    "tracking_empty": step_tracking_empty,
    "tasks": step_tasks,
    "tasks_pool": step_tasks_pool,
    "tune": step_tune,
    "tune_optuna": step_tune_optuna,
}


if __name__ == "__main__":
    harness.run_step(STEPS)
