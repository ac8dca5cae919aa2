"""alphalab's side of each benchmark step; run by ``run.py`` as one subprocess per measurement.

Usage (internal): ``python steps_alphalab.py STEP SPEC.json OUT.json``. The spec names the
market (Parquet store and Qlib directory), the window and where to write outputs; the result
JSON holds ``seconds`` (the timed section) and optional ``phases`` and ``metrics``. Values
that the harness compares with Qlib's are written as ``.npz`` files (no pickles: the two
environments may run different pandas versions).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness  # this folder is on sys.path: the script runs from it
import numpy as np
import pandas as pd

FIELDS = ["open", "high", "low", "close", "volume", "vwap"]


def save_frame(path: str | Path, frame: pd.DataFrame) -> None:
    """Write a (datetime, instrument)-indexed numeric frame as npz (dates as int64 days)."""
    frame = frame.sort_index()
    dates = pd.DatetimeIndex(frame.index.get_level_values("datetime"))
    np.savez(
        path,
        dates=dates.values.astype("datetime64[D]").astype("int64"),
        instruments=np.asarray(frame.index.get_level_values("instrument"), dtype=str),
        columns=np.asarray([str(c) for c in frame.columns], dtype=str),
        values=frame.to_numpy(dtype="float64"),
    )


def load_frame(path: str | Path) -> pd.DataFrame:
    """Read what :func:`save_frame` wrote."""
    with np.load(path, allow_pickle=False) as z:
        index = pd.MultiIndex.from_arrays(
            [pd.to_datetime(z["dates"].astype("datetime64[D]")), z["instruments"]],
            names=["datetime", "instrument"],
        )
        return pd.DataFrame(z["values"], index=index, columns=list(z["columns"]))


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


STEPS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "data": step_data,
    "features": step_features,
    "signal": step_signal,
    "backtest": step_backtest,
    "workflow": step_workflow,
    "tracking_log": step_tracking_log,
    "tracking_empty": step_tracking_empty,
}


if __name__ == "__main__":
    harness.run_step(STEPS)
