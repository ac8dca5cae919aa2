"""The peer's side of each benchmark step: Qlib 0.9.7 (and plain MLflow for tracking).

Runs in the peer environment (``benchmarks/.peer-env``) as one subprocess per measurement:
``python steps_qlib.py STEP SPEC.json OUT.json``. Same protocol and output files as
``steps_alphalab.py``; only numpy, pandas, Qlib and MLflow are imported here (and
``light_task.py``, the task both sides' rolling studies train).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness  # this folder is on sys.path: the script runs from it
import light_task
import pandas as pd
from npz_frames import load_frame, save_frame, save_rolling

FIELDS = ["open", "high", "low", "close", "volume", "vwap"]


def _init(spec: dict[str, Any]) -> None:
    import qlib

    qlib.init(provider_uri=spec["qlib_dir"], region="cn", expression_cache=None, dataset_cache=None)


def step_data(spec: dict[str, Any]) -> dict[str, Any]:
    """``D.features`` of six raw fields for every stock of the universe."""
    from qlib.data import D

    _init(spec)
    D.calendar(freq="day")
    began = time.perf_counter()
    frame = D.features(
        spec["codes"], [f"${f}" for f in FIELDS], spec["start"], spec["end"], freq="day"
    )
    seconds = time.perf_counter() - began
    frame.columns = FIELDS
    frame = frame.swaplevel().sort_index()
    frame.index = frame.index.set_names(["datetime", "instrument"])
    sample = frame[frame.index.get_level_values("instrument").isin(spec["sample_codes"])]
    save_frame(Path(spec["out_dir"]) / "data_peer.npz", sample)
    return {"seconds": seconds, "rows": len(frame)}


def step_features(spec: dict[str, Any]) -> dict[str, Any]:
    """Qlib's Alpha158 handler (load, compute, processors); caches off."""
    from qlib.contrib.data.handler import Alpha158

    _init(spec)
    began = time.perf_counter()
    handler = Alpha158(
        instruments=spec["universe"],
        start_time=spec["start"],
        end_time=spec["end"],
        fit_start_time=spec["segments"]["train"][0],
        fit_end_time=spec["segments"]["train"][1],
    )
    seconds = time.perf_counter() - began
    frame = handler.fetch(col_set="feature")
    frame = frame[frame.index.get_level_values("instrument").isin(spec["sample_codes"])]
    save_frame(Path(spec["out_dir"]) / "features_peer.npz", frame)
    return {"seconds": seconds, "rows": len(handler.fetch(col_set="label"))}


def step_signal(spec: dict[str, Any]) -> dict[str, Any]:
    """``calc_ic`` of qlib.contrib.eva.alpha (what SigAnaRecord computes)."""
    from qlib.contrib.eva.alpha import calc_ic

    signal = load_frame(spec["signal"])
    began = time.perf_counter()
    ic, ric = calc_ic(signal["score"], signal["label"])
    seconds = time.perf_counter() - began
    frame = pd.DataFrame({"ic": ic, "ric": ric}).rename_axis("datetime")
    frame = frame.assign(instrument="-").set_index("instrument", append=True)
    save_frame(Path(spec["out_dir"]) / "signal_peer.npz", frame)
    return {"seconds": seconds, "metrics": {"IC": float(ic.mean()), "Rank IC": float(ric.mean())}}


def step_backtest(spec: dict[str, Any]) -> dict[str, Any]:
    """``backtest_daily`` with TopkDropoutStrategy(50, 5), then the risk analysis."""
    from qlib.contrib.evaluate import backtest_daily, risk_analysis
    from qlib.contrib.strategy import TopkDropoutStrategy

    _init(spec)
    signal = load_frame(spec["signal"])
    bt = spec["backtest"]
    began = time.perf_counter()
    strategy = TopkDropoutStrategy(signal=signal["score"], topk=50, n_drop=5)
    report, _ = backtest_daily(
        start_time=bt["start_time"],
        end_time=bt["end_time"],
        strategy=strategy,
        account=bt["account"],
        benchmark=spec["benchmark"],
        exchange_kwargs=bt["exchange_kwargs"],
    )
    analysis = risk_analysis(report["return"] - report["bench"] - report["cost"])
    seconds = time.perf_counter() - began
    report = report[["return", "cost", "bench", "turnover"]].copy()
    report.index = pd.MultiIndex.from_arrays(
        [pd.DatetimeIndex(report.index), ["-"] * len(report)], names=["datetime", "instrument"]
    )
    save_frame(Path(spec["out_dir"]) / "backtest_peer.npz", report)
    return {
        "seconds": seconds,
        "metrics": {"annualized_return": float(analysis.loc["annualized_return", "risk"])},
    }


def _timed(phases: dict[str, float], name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``func`` so that its outermost calls add to ``phases[name]``."""
    depth = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth[0] += 1
        began = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - began

    return wrapper


def step_workflow(spec: dict[str, Any]) -> dict[str, Any]:
    """``qrun WORKFLOW.yaml``: qlib.cli.run.workflow, with timers around its phases.

    Qlib records into MLflow's file store (``./mlruns``), which current MLflow only opens with
    ``MLFLOW_ALLOW_FILE_STORE=true``.
    """
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    import qlib.cli.run as qrun
    from qlib.contrib.model.gbdt import LGBModel
    from qlib.data.dataset.handler import DataHandlerLP
    from qlib.workflow.record_temp import PortAnaRecord, SigAnaRecord, SignalRecord

    phases: dict[str, float] = {}
    DataHandlerLP.setup_data = _timed(phases, "features", DataHandlerLP.setup_data)
    LGBModel.fit = _timed(phases, "fit", LGBModel.fit)
    for record in (SignalRecord, SigAnaRecord, PortAnaRecord):
        record.generate = _timed(phases, record.__name__, record.generate)
    recorders: list[Any] = []
    task_train = qrun.task_train

    def capture(*args: Any, **kwargs: Any) -> Any:
        recorder = task_train(*args, **kwargs)
        recorders.append(recorder)
        return recorder

    qrun.task_train = capture
    work = Path(spec["out_dir"]) / "qrun"  # qrun records into ./mlruns
    work.mkdir(exist_ok=True)
    os.chdir(work)
    began = time.perf_counter()
    qrun.workflow(spec["qlib_workflow_yaml"], experiment_name="bench")
    phases["total"] = time.perf_counter() - began
    metrics = {k: float(v) for k, v in recorders[-1].list_metrics().items()} if recorders else {}
    return {"seconds": phases["total"], "phases": phases, "metrics": metrics}


def _mlflow_client(spec: dict[str, Any]) -> tuple[Any, str]:
    from mlflow.tracking import MlflowClient

    folder = Path(tempfile.mkdtemp(prefix="mlflow-", dir=spec["out_dir"]))
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    exp_id = client.create_experiment("bench", artifact_location=str(folder / "artifacts"))
    run = client.create_run(exp_id)  # the store's creation is not what is measured
    client.set_terminated(run.info.run_id)
    return client, exp_id


def step_tracking_log(spec: dict[str, Any]) -> dict[str, Any]:
    """One ``MlflowClient.log_metric`` per step (how Qlib's recorder logs), all checked."""
    client, exp_id = _mlflow_client(spec)
    n = int(spec["tracking_steps"])
    began = time.perf_counter()
    run = client.create_run(exp_id)
    for step in range(n):
        client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1), step=step)
    client.set_terminated(run.info.run_id)
    seconds = time.perf_counter() - began
    stored = len(client.get_metric_history(run.info.run_id, "loss"))
    return {"seconds": seconds, "metrics": {"points": stored}}


def step_tracking_log_qlib(spec: dict[str, Any]) -> dict[str, Any]:
    """Qlib's ``R.log_metrics`` once per step (its recorder's async caller), all checked."""
    import qlib
    from mlflow.tracking import MlflowClient
    from qlib.workflow import R

    folder = Path(tempfile.mkdtemp(prefix="qlib-runs-", dir=spec["out_dir"]))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    qlib.init(provider_uri=spec["qlib_dir"], region="cn")
    with R.start(experiment_name="bench", recorder_name="warm-up", uri=uri):
        pass  # the store's creation (schema migrations) is not what is measured
    n = int(spec["tracking_steps"])
    began = time.perf_counter()
    with R.start(experiment_name="bench", recorder_name="log", uri=uri):
        for step in range(n):
            R.log_metrics(step=step, loss=1.0 / (step + 1))
        run_id = R.get_recorder().id
    seconds = time.perf_counter() - began
    stored = len(MlflowClient(tracking_uri=uri).get_metric_history(run_id, "loss"))
    return {"seconds": seconds, "metrics": {"points": stored}}


def step_tracking_empty(spec: dict[str, Any]) -> dict[str, Any]:
    """``create_run`` + ``set_terminated`` N times."""
    client, exp_id = _mlflow_client(spec)
    n = int(spec["empty_runs"])
    began = time.perf_counter()
    for i in range(n):
        run = client.create_run(exp_id, run_name=f"empty-{i}")
        client.set_terminated(run.info.run_id)
    return {"seconds": time.perf_counter() - began}


def _rolling_key(recorder: Any) -> tuple[str, Any]:
    """(model class, test segment): the key of Qlib's ``RollingStrategy.get_collector``."""
    task = recorder.load_object("task")
    return task["model"]["class"], task["dataset"]["kwargs"]["segments"]["test"]


def step_tasks(spec: dict[str, Any]) -> dict[str, Any]:
    """Qlib's rolling study in one process: RollingGen(ROLL_SD) + TrainerR + RecorderCollector.

    No MongoDB is needed: TrainerR trains in this process and records into MLflow's file
    store in a scratch folder (``MLFLOW_ALLOW_FILE_STORE=true``, as for qrun).
    """
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    import qlib
    from qlib.model.ens.group import RollingGroup
    from qlib.model.trainer import TrainerR
    from qlib.workflow.task.collect import RecorderCollector
    from qlib.workflow.task.gen import RollingGen

    work = Path(tempfile.mkdtemp(prefix="qlib-rolling-", dir=spec["out_dir"]))
    atexit.register(shutil.rmtree, work, True)
    os.chdir(work)
    qlib.init(
        provider_uri=spec["qlib_dir"],
        region="cn",
        expression_cache=None,
        dataset_cache=None,
        exp_manager={
            "class": "MLflowExpManager",
            "module_path": "qlib.workflow.expm",
            "kwargs": {"uri": f"file:{work / 'mlruns'}", "default_exp_name": "Experiment"},
        },
    )
    seconds, phases, windows, collected = light_task.run_rolling(
        light_task.rolling_task(spec, "qlib"),
        int(spec["rolling_step"]),
        RollingGen,
        TrainerR,
        lambda: RecorderCollector(
            experiment="rolling", process_list=RollingGroup(), rec_key_func=_rolling_key
        )(),
    )
    saved = save_rolling(Path(spec["out_dir"]) / "tasks_peer.npz", collected)
    return {"seconds": seconds, "phases": phases, "metrics": {"windows": windows, **saved}}


STEPS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "data": step_data,
    "features": step_features,
    "signal": step_signal,
    "backtest": step_backtest,
    "workflow": step_workflow,
    "tracking_log": step_tracking_log,
    "tracking_log_qlib": step_tracking_log_qlib,
    "tracking_empty": step_tracking_empty,
    "tasks": step_tasks,
}


if __name__ == "__main__":
    harness.run_step(STEPS)
