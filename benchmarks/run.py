"""alphalab side by side with Qlib 0.9.7 (and plain MLflow) on the same simulated market.

Usage::

    .venv/bin/python benchmarks/run.py [--scale small|medium|large] [--suites data,features]
                                       [--repeat 3] [--no-docs]
    make bench                       # the medium scale, every suite, docs/performance.md

Scales: ``small`` (60 stocks x 4 years, a quick look), ``medium`` (300 stocks x 8 years),
``large`` (a growth curve: 300, 1000 and 3000 stocks x 10 years). Suites: tracking, data,
features, backtest, workflow, tasks, tune; a suite whose alphalab side does not exist yet
prints "not available".

What happens:

1. The peer environment ``benchmarks/.peer-env`` (a virtual environment with pyqlib==0.9.7
   and its dependencies) is created once and reused.
2. The simulated market of each size is generated once into ``benchmarks/.work/`` as an
   alphalab Parquet store and converted with ``write_qlib_dir`` into Qlib's binary layout, so
   both sides read the same float32 values; shared predictions for the backtest suite and the
   two workflow files (alphalab's demo workflow and its Qlib twin) are written beside them.
3. Every step runs in a fresh subprocess per side (alphalab in this environment, Qlib in the
   peer's; plain MLflow and plain Optuna, the peers of some rows, in this one), alternating
   which side goes first, ``--repeat`` times; the table shows medians. Time is the step's own
   timed section (for the workflow suite: the whole run, qrun's ``workflow`` for Qlib);
   memory is the peak RSS of the process (its VmHWM, or that of a child process it waited
   for, if larger), interpreter and imports included. A row may have no peer (said under
   its table).
4. Agreement is computed where both sides compute the same thing: raw values, feature
   values, IC, daily backtest returns, the workflow's metrics.
5. The results go to ``benchmarks/results/<scale>-<time>.json``; a medium run also rewrites
   ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from npz_frames import load_frame, save_frame  # noqa: E402

PEER_ENV = HERE / ".peer-env"
PEER_PYTHON = PEER_ENV / "bin" / "python"
PEER_REQUIREMENTS = ["pyqlib==0.9.7"]
PEER_STAMP = PEER_ENV / ".bench-installed"
WORK = HERE / ".work"
RESULTS = HERE / "results"
DOCS = ROOT / "docs" / "performance.md"
DEMO = ROOT / "examples" / "workflow_lightgbm_alpha158.yaml"
UNIVERSE = "bench"
BENCHMARK = "SH000300"


@dataclass(frozen=True)
class Size:
    """One simulated market: stocks x [start, end]."""

    instruments: int
    start: str
    end: str

    @property
    def label(self) -> str:
        return f"{self.instruments} stocks x {self.start[:4]}-{self.end[:4]}"


SCALES: dict[str, tuple[Size, ...]] = {
    "small": (Size(60, "2019-01-01", "2022-12-31"),),
    "medium": (Size(300, "2015-01-01", "2022-12-31"),),
    "large": (
        Size(300, "2013-01-01", "2022-12-31"),
        Size(1000, "2013-01-01", "2022-12-31"),
        Size(3000, "2013-01-01", "2022-12-31"),
    ),
}

#: Steps of each suite: (row name, alphalab's step, the peer's step, the peer's environment:
#: "qlib" = the peer venv, "mlflow" = plain MLflow in alphalab's own environment, "optuna" =
#: plain Optuna in alphalab's own environment; None and None: a row with no peer).
SUITE_STEPS: dict[str, list[tuple[str, str, str | None, str | None]]] = {
    "tracking": [
        ("log {steps} points (MlflowClient.log_metric)", "tracking_log", "tracking_log", "mlflow"),
        ("log {steps} points (Qlib's R.log_metrics)", "tracking_log", "tracking_log_qlib", "qlib"),
        ("{runs} empty runs (MlflowClient)", "tracking_empty", "tracking_empty", "mlflow"),
    ],
    "data": [("read 6 fields, all stocks", "data", "data", "qlib")],
    "features": [("Alpha158 handler, no cache", "features", "features", "qlib")],
    "backtest": [
        ("IC + Rank IC by day", "signal", "signal", "qlib"),
        ("TopkDropout backtest + risk", "backtest", "backtest", "qlib"),
    ],
    "workflow": [("LightGBM+Alpha158 end to end", "workflow", "workflow", "qlib")],
    "tasks": [
        ("rolling OLS, {windows} windows (RollingGen+TrainerR+collect)", "tasks", "tasks", "qlib"),
        ("  same via SQLite task pool, 2 workers", "tasks_pool", None, None),
    ],
    "tune": [("{trials} TPE trials, small LightGBM", "tune", "tune_optuna", "optuna")],
}
#: Rows without a peer, and why (printed under the table).
STEP_NOTE = {
    "tasks_pool": "alphalab only: Qlib's task pool (TaskManager, TrainerRM) needs MongoDB",
}
#: Where each peer environment runs its steps: (python, script).
PEER_SCRIPTS = {
    "qlib": (PEER_PYTHON, "steps_qlib.py"),
    "mlflow": (Path(sys.executable), "steps_qlib.py"),
    "optuna": (Path(sys.executable), "steps_alphalab.py"),
}
SUITE_MODULE = {
    "tracking": "alphalab.tracking",
    "data": "alphalab.data",
    "features": "alphalab.data.handler",
    "backtest": "alphalab.evaluate",
    "workflow": "alphalab.workflow",
    "tasks": "alphalab.tasks",
    "tune": "alphalab.tune",
}
PEER_NAME = {
    "tracking": "MLflow client, Qlib's R",
    "tune": "Optuna alone, same training, nothing tracked",
}
WORKFLOW_PHASES = ("features", "fit", "SignalRecord", "SigAnaRecord", "PortAnaRecord")
#: Metric points and empty runs of the tracking suite per scale (one log_metric call per
#: point costs ~10 ms on SQLite, so the peer's side grows fast).
TRACKING = {"small": (500, 20), "medium": (1000, 50), "large": (10000, 100)}
#: Test windows of the rolling study and trials of the tuning study.
ROLLING_WINDOWS = 4
TUNE_TRIALS = 8


def log(message: str) -> None:
    print(message, flush=True)


# --- the peer environment ----------------------------------------------------------------


def ensure_peer_env() -> None:
    """Create the peer virtual environment once (a stamp file records what it holds)."""
    wanted = "\n".join(PEER_REQUIREMENTS)
    if PEER_PYTHON.exists() and PEER_STAMP.exists() and PEER_STAMP.read_text() == wanted:
        return
    log(f"creating the peer environment ({', '.join(PEER_REQUIREMENTS)}); once, a few minutes")
    if not PEER_PYTHON.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_ENV)], check=True)
    pip = [str(PEER_PYTHON), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, *PEER_REQUIREMENTS], check=True)
    PEER_STAMP.write_text(wanted)


def peer_versions() -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m;"
        "print(json.dumps({p: m.version(p) for p in "
        "('pyqlib', 'lightgbm', 'mlflow', 'pandas', 'numpy')}))"
    )
    out = subprocess.run([str(PEER_PYTHON), "-c", code], capture_output=True, text=True)
    return (
        {f"peer {k}": v for k, v in json.loads(out.stdout).items()} if out.returncode == 0 else {}
    )


def own_versions() -> dict[str, str]:
    import importlib.metadata as m

    names = ("alphalab", "polars", "lightgbm", "mlflow", "pandas", "numpy")
    return {name: m.version(name) for name in names}


# --- the market and the shared inputs ----------------------------------------------------


def segments(size: Size) -> dict[str, list[str]]:
    """Train / valid / test: the last two years test, the two before valid (one each if short)."""
    first, last = int(size.start[:4]), int(size.end[:4])
    span = 2 if last - first + 1 >= 6 else 1
    test0, valid0 = last - span + 1, last - 2 * span + 1
    return {
        "train": [size.start, f"{valid0 - 1}-12-31"],
        "valid": [f"{valid0}-01-01", f"{test0 - 1}-12-31"],
        "test": [f"{test0}-01-01", size.end],
    }


def prepare_market(size: Size) -> dict[str, Any]:
    """Generate (once) the store, its Qlib twin, the shared signal and both workflow files."""
    from alphalab.data import (
        ParquetMarketStore,
        SimulationConfig,
        write_qlib_dir,
        write_simulated_store,
    )

    folder = WORK / f"market-{size.instruments}-{size.start}-{size.end}"
    store_dir, qlib_dir = folder / "store", folder / "qlib"
    if not (folder / "ready").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        began = time.perf_counter()
        config = SimulationConfig(
            n_instruments=size.instruments,
            start=size.start,
            end=size.end,
            seed=0,
            universes={UNIVERSE: size.instruments},
            benchmark=BENCHMARK,
        )
        store = write_simulated_store(store_dir, config)
        write_qlib_dir(store, qlib_dir)
        log(f"  market {size.label}: written in {time.perf_counter() - began:.1f} s")
        (folder / "ready").write_text("ok\n")
    store = ParquetMarketStore(store_dir)
    calendar = pd.DatetimeIndex(store.calendar_array())
    codes = sorted(c for c in store.listing().get_column("instrument").to_list() if c != BENCHMARK)
    seg = segments(size)
    test_days = int(((calendar >= seg["test"][0]) & (calendar <= seg["test"][1])).sum())
    backtest_config = {
        "start_time": seg["test"][0],
        # Qlib's backtest needs a trading day after its end: stop one day before the data does
        "end_time": str(calendar[-2].date()),
        "account": 100000000,
        "exchange_kwargs": {
            "limit_threshold": 0.095,
            "deal_price": "close",
            "open_cost": 0.0005,
            "close_cost": 0.0015,
            "min_cost": 5,
        },
    }
    spec = {
        "store": str(store_dir),
        "qlib_dir": str(qlib_dir),
        "universe": UNIVERSE,
        "benchmark": BENCHMARK,
        "codes": codes,
        "sample_codes": codes[:: max(1, len(codes) // 20)][:20],
        "start": size.start,
        "end": size.end,
        "segments": seg,
        "backtest": backtest_config,
        "signal": str(folder / "signal.npz"),
        "workflow_yaml": str(folder / "workflow_alphalab.yaml"),
        "qlib_workflow_yaml": str(folder / "workflow_qlib.yaml"),
        "threads": 2,
        # the rolling study: ROLLING_WINDOWS test windows of equal length tile the test segment
        "rolling_step": -(-test_days // ROLLING_WINDOWS),
        "tune_trials": TUNE_TRIALS,
    }
    if not Path(spec["signal"]).exists():
        write_signal(store, codes, seg["test"], Path(spec["signal"]))
    write_workflows(spec)
    return spec


def label_series(store: Any, codes: list[str], test: list[str]) -> tuple[pd.Series, pd.Series]:
    """Qlib's label ``Ref($close, -2)/Ref($close, -1) - 1`` over ``test``, and the close."""
    frame = store.read(["close"], codes, test[0], test[1], future=2).to_pandas()
    close = frame.set_index(["datetime", "instrument"])["close"].astype(float)
    wide = close.unstack("instrument")
    label = (wide.shift(-2) / wide.shift(-1) - 1).stack(future_stack=True)
    label.index = label.index.set_names(["datetime", "instrument"])
    label = label[label.index.get_level_values("datetime") <= pd.Timestamp(test[1])]
    return label, close


def write_signal(store: Any, codes: list[str], test: list[str], path: Path) -> None:
    """Predictions for the backtest suite: Qlib's label plus noise, over the test segment."""
    label, close = label_series(store, codes, test)
    rng = np.random.default_rng(7)
    zscore = label.groupby(level="datetime").transform(lambda s: (s - s.mean()) / s.std())
    score = 0.1 * zscore.fillna(0.0) + rng.normal(size=len(label))
    present = close.reindex(label.index).notna()
    signal = pd.DataFrame({"score": score, "label": label})[present.to_numpy()]
    save_frame(path, signal)


def write_workflows(spec: dict[str, Any]) -> None:
    """The demo workflow pointed at the store, and the same workflow in Qlib's terms."""
    demo = yaml.safe_load(DEMO.read_text())  # anchors resolved
    seg, bt = spec["segments"], spec["backtest"]
    handler_kwargs = {
        "start_time": spec["start"],
        "end_time": spec["end"],
        "fit_start_time": seg["train"][0],
        "fit_end_time": seg["train"][1],
        "instruments": spec["universe"],
    }
    port = {
        "strategy": {
            "class": "TopkDropoutStrategy",
            "module_path": "alphalab.evaluate",
            "kwargs": {"signal": "<PRED>", "topk": 50, "n_drop": 5},
        },
        "backtest": {**bt, "benchmark": spec["benchmark"]},
    }
    ours = copy.deepcopy(demo)
    ours["qlib_init"]["provider_uri"] = spec["store"]
    ours["market"], ours["benchmark"] = spec["universe"], spec["benchmark"]
    ours["data_handler_config"] = handler_kwargs
    ours["port_analysis_config"] = port
    ours["task"]["dataset"]["kwargs"]["handler"]["kwargs"] = handler_kwargs
    ours["task"]["dataset"]["kwargs"]["segments"] = seg
    ours["task"]["record"][2]["kwargs"]["config"] = port
    Path(spec["workflow_yaml"]).write_text(yaml.safe_dump(ours, sort_keys=False))

    theirs = copy.deepcopy(ours)
    theirs.pop("experiment_name", None)
    theirs["qlib_init"] = {"provider_uri": spec["qlib_dir"], "region": "cn"}
    task = theirs["task"]
    task["model"]["module_path"] = "qlib.contrib.model.gbdt"
    task["dataset"]["module_path"] = "qlib.data.dataset"
    task["dataset"]["kwargs"]["handler"]["module_path"] = "qlib.contrib.data.handler"
    for record in task["record"]:
        record["module_path"] = "qlib.workflow.record_temp"
    task["record"][2]["kwargs"]["config"]["strategy"]["module_path"] = "qlib.contrib.strategy"
    theirs["port_analysis_config"] = task["record"][2]["kwargs"]["config"]
    Path(spec["qlib_workflow_yaml"]).write_text(yaml.safe_dump(theirs, sort_keys=False))


# --- measuring ---------------------------------------------------------------------------


class StepFailed(RuntimeError):
    """A child process exited with an error."""


def run_child(python: Path | str, script: str, step: str, spec_path: Path, out: Path) -> dict:
    """Run one step in a fresh process; its JSON (with its peak RSS in MB) plus wall time."""
    out.unlink(missing_ok=True)
    logfile = out.with_suffix(".log")
    with logfile.open("w") as stream:
        began = time.perf_counter()
        proc = subprocess.Popen(
            [str(python), str(HERE / script), step, str(spec_path), str(out)],
            stdout=stream,
            stderr=subprocess.STDOUT,
            cwd=out.parent,
        )
        proc.wait()
        wall = time.perf_counter() - began
    if proc.returncode != 0 or not out.exists():
        tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-15:])
        raise StepFailed(f"{script} {step} exited with {proc.returncode}:\n{tail}")
    result = json.loads(out.read_text())
    result["wall"] = wall
    return result


def rolling_ic(spec: dict[str, Any], score: pd.Series) -> float:
    """Mean daily IC of rolling predictions against Qlib's label computed from the store."""
    from alphalab.data import ParquetMarketStore
    from alphalab.evaluate import calc_ic

    label, _ = label_series(
        ParquetMarketStore(spec["store"]), spec["codes"], spec["segments"]["test"]
    )
    frame = pd.DataFrame({"score": score, "label": label.reindex(score.index)}).dropna()
    ic, _ = calc_ic(frame["score"], frame["label"])
    return float(ic.mean())


def agreement(
    step: str, folder: Path, ours: list[dict], theirs: list[dict], spec: dict[str, Any]
) -> dict[str, Any]:
    """Compare what both sides computed (from the last repetition's outputs)."""
    if not ours or (not theirs and step not in STEP_NOTE):
        return {}
    a, b = ours[-1], (theirs[-1] if theirs else {})
    out: dict[str, Any] = {}
    try:
        if step in ("data", "features"):
            left = load_frame(folder / f"{step}_alphalab.npz")
            right = load_frame(folder / f"{step}_peer.npz")
            rows = left.index.intersection(right.index)
            cols = [c for c in left.columns if c in right.columns]
            out["match"] = (
                f"{100 * harness.match_rate(left.loc[rows, cols], right.loc[rows, cols]):.2f}%"
            )
            out["cols"] = f"{len(cols)}/{len(right.columns)}"
            out["rows"] = f"{a.get('rows')}/{b.get('rows')}"
        elif step == "signal":
            left = load_frame(folder / "signal_alphalab.npz")
            right = load_frame(folder / "signal_peer.npz").reindex(left.index)
            out["IC"] = f"{a['metrics']['IC']:.4f}/{b['metrics']['IC']:.4f}"
            out["max|dIC|"] = f"{float(np.nanmax(np.abs(left['ic'] - right['ic']))):.1e}"
        elif step == "backtest":
            left = load_frame(folder / "backtest_alphalab.npz")
            right = load_frame(folder / "backtest_peer.npz")
            common = left.index.intersection(right.index)
            diff = (left.loc[common, "return"] - right.loc[common, "return"]).abs()
            out["days"] = f"{len(left)}/{len(right)}"
            out["daily return |d|<1e-6"] = f"{100 * float((diff < 1e-6).mean()):.1f}%"
            out["<1e-4"] = f"{100 * float((diff < 1e-4).mean()):.1f}%"
            out["max|d|"] = f"{float(diff.max()):.1e}"
            out["ann. excess"] = (
                f"{a['metrics']['annualized_return']:.3f}/{b['metrics']['annualized_return']:.3f}"
            )
        elif step == "workflow":
            for key, label in (("IC", "IC"), ("Rank IC", "Rank IC")):
                if key in a["metrics"] and key in b["metrics"]:
                    out[label] = f"{a['metrics'][key]:.4f}/{b['metrics'][key]:.4f}"
            key = "1day.excess_return_with_cost.annualized_return"
            if key in a["metrics"] and key in b["metrics"]:
                out["ann. excess"] = f"{a['metrics'][key]:.3f}/{b['metrics'][key]:.3f}"
        elif step == "tracking_log":
            out["points"] = f"{a['metrics']['points']}/{b['metrics']['points']}"
        elif step == "tasks":
            left = load_frame(folder / "tasks_alphalab.npz")["score"]
            right = load_frame(folder / "tasks_peer.npz")["score"]
            out["IC"] = f"{rolling_ic(spec, left):.4f}/{rolling_ic(spec, right):.4f}"
            common = left.index.intersection(right.index)
            out["pred corr"] = f"{float(np.corrcoef(left[common], right[common])[0, 1]):.4f}"
            out["windows"] = f"{a['metrics']['windows']}/{b['metrics']['windows']}"
            out["rows"] = f"{a['metrics']['rows']}/{b['metrics']['rows']}"
        elif step == "tasks_pool":
            pooled = load_frame(folder / "tasks_pool_alphalab.npz")["score"]
            alone = load_frame(folder / "tasks_alphalab.npz")["score"].reindex(pooled.index)
            out["IC"] = f"{rolling_ic(spec, pooled):.4f}"
            out["windows"] = a["metrics"]["windows"]
            out["= TrainerR preds"] = f"{100 * harness.match_rate(pooled, alone):.1f}%"
        elif step == "tune":
            ma, mb = a["metrics"], b["metrics"]
            out["best IC"] = f"{ma['best_value']:.5f}/{mb['best_value']:.5f}"
            pairs = list(zip(ma["params"], mb["params"], strict=False))
            out["trials"] = f"{ma['trials']}/{mb['trials']}"
            out["same params"] = sum(x == y for x, y in pairs)
            values = zip(ma.get("values", []), mb.get("values", []), strict=False)
            out["same IC"] = sum(
                x is not None and y is not None and abs(x - y) < 1e-9 for x, y in values
            )
            out["s/trial"] = f"{ma['trial_seconds']:.2f}/{mb['trial_seconds']:.2f}"
    except (OSError, KeyError, ValueError) as e:
        out["error"] = str(e)[:80]
    return out


def run_suite(
    suite: str, spec: dict[str, Any], folder: Path, repeat: int, scale: str
) -> dict[str, Any]:
    """Measure every step of a suite, both sides alternating; the suite's JSON entry."""
    entry: dict[str, Any] = {
        "available": True,
        "reason": "",
        "steps": [],
        "load_average": {"before": harness.load_average()},
    }
    if importlib.util.find_spec(SUITE_MODULE[suite]) is None:
        entry.update(available=False, reason=f"{SUITE_MODULE[suite]} does not exist yet")
    elif not SUITE_STEPS[suite]:
        entry.update(available=False, reason=f"no side-by-side steps for {suite} yet")
        return entry
    steps_, runs = TRACKING[scale]
    counts = {"steps": f"{steps_:,}", "runs": runs, "windows": ROLLING_WINDOWS}
    spec = {**spec, "tracking_steps": steps_, "empty_runs": runs}
    folder.mkdir(parents=True, exist_ok=True)
    spec["out_dir"] = str(folder)
    spec_path = folder / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    if suite == "workflow":
        # alphalab's runs go to a SQLite store made beforehand, as a user's store is after the
        # first run: MLflow's schema migrations (~5 s, once per store) are not measured.
        from alphalab.tracking import get_client

        tracking = folder / "alphalab-runs"
        tracking.mkdir(exist_ok=True)
        get_client(f"sqlite:///{tracking / 'mlflow.db'}")
        spec["tracking_dir"] = str(tracking)
        spec_path.write_text(json.dumps(spec, indent=1))
    if suite in ("tasks", "tune"):
        # each step copies this empty, migrated store: fresh runs, no migrations per process
        spec["tracking_template"] = str(empty_store(folder / "empty-mlflow.db"))
        spec_path.write_text(json.dumps(spec, indent=1))
    for title, step, peer_step, peer_env in SUITE_STEPS[suite]:
        title = title.format(**counts, trials=spec["tune_trials"])
        sides: dict[str, list[dict]] = {"alphalab": [], "peer": []}
        errors: list[str] = []
        both = ["alphalab"] if peer_step is None or peer_env is None else ["alphalab", "peer"]
        for rep in range(repeat):
            order = both if rep % 2 == 0 else both[::-1]
            for side in order:
                python: Path | str = sys.executable
                script, name = "steps_alphalab.py", step
                if side == "peer" and peer_step is not None and peer_env is not None:
                    (python, script), name = PEER_SCRIPTS[peer_env], peer_step
                try:
                    result = run_child(
                        python, script, name, spec_path, folder / f"{name}-{side}.json"
                    )
                except StepFailed as e:
                    errors.append(f"{side}: {e}")
                    log(f"    {title} [{side}] FAILED\n{e}")
                    continue
                if step == "workflow":  # end to end: the process, as a user waits for it
                    result["step_seconds"], result["seconds"] = result["seconds"], result["wall"]
                sides[side].append(result)
                log(
                    f"    {title} [{side}] {result['seconds']:.2f} s, "
                    f"peak {result['peak_mb']:.0f} MB (load {os.getloadavg()[0]:.1f})"
                )
        row = harness.step_entry(
            title,
            sides["alphalab"],
            sides["peer"],
            agreement(step, folder, sides["alphalab"], sides["peer"], spec),
            note=STEP_NOTE.get(step, ""),
        )
        if errors:
            row["errors"] = errors
        entry["steps"].append(row)
        if step == "workflow":
            entry["steps"] += phase_rows(sides)
    entry["load_average"]["after"] = harness.load_average()
    return entry


def empty_store(path: Path) -> Path:
    """An empty, migrated SQLite tracking store in one file (its WAL checkpointed)."""
    import sqlite3

    from alphalab.tracking import get_client

    if not path.exists():
        get_client(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _rest(result: dict[str, Any]) -> float:
    """Process time outside the named phases: interpreter, imports, init, tracking, saving."""
    return result["wall"] - sum(result["phases"].get(p, 0.0) for p in WORKFLOW_PHASES)


def phase_rows(sides: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """Rows for the workflow's phases (timed inside the end-to-end processes)."""
    rows = []
    for phase in (*WORKFLOW_PHASES, "rest"):
        samples = {}
        for side, results in sides.items():
            samples[side] = [
                {
                    "seconds": _rest(r) if phase == "rest" else r["phases"].get(phase),
                    "peak_mb": None,
                }
                for r in results
            ]
        title = "  rest (start-up, imports, tracking, artifacts)" if phase == "rest" else phase
        rows.append(
            harness.step_entry(
                title if phase == "rest" else f"  {title}", samples["alphalab"], samples["peer"]
            )
        )
    return rows


# --- reporting ---------------------------------------------------------------------------


def print_suite(name: str, entry: dict[str, Any], peer: str) -> None:
    load = entry["load_average"]
    log(f"\n== {name} (peer: {peer}) ==")
    if not entry["available"]:
        log(f"not available: {entry['reason']}")
        return
    log(harness.format_table(entry["steps"]))
    for line in harness.table_notes(entry["steps"]):
        log(line)
    log(f"load average before {load.get('before')}, after {load.get('after')}")


STEP_NOTES = """\
What each row measures (both sides on the same data, in the same run):

- tracking: alphalab's `R.log_metrics` once per step, run end included (the batched async
  logger flushes there), against one `MlflowClient.log_metric` call per point and against
  Qlib's `R.log_metrics`; every point is read back (agreement: points stored). Empty runs:
  `R.start` against `create_run` + `set_terminated`. The store is created before timing.
- data: six raw fields (open, high, low, close, volume, vwap) of every stock over the whole
  calendar: `ParquetMarketStore.read` against Qlib's `D.features`. Agreement: share of equal
  values on 20 sampled stocks.
- features: the Alpha158 handler (load, 158 expressions + label, DropnaLabel and
  CSZScoreNorm of the label fitted on the train window), alphalab's with no feature cache,
  Qlib's with expression and dataset caches off. Agreement: share of equal feature values
  (relative 1e-4, NaN = NaN) on 20 sampled stocks; differences come from the NaN handling
  documented in alphalab's operator notes.
- backtest: shared predictions (Qlib's label plus noise, test segment) through IC and Rank IC
  by day (`calc_ic` on both sides), and TopkDropout(topk=50, n_drop=5) with the demo's
  exchange settings over the test segment, price loading and risk analysis included
  (`backtest` against Qlib's `backtest_daily`). Agreement: daily returns.
- workflow: the demo workflow (`examples/workflow_lightgbm_alpha158.yaml`, LightGBM on
  Alpha158, SignalRecord + SigAnaRecord + PortAnaRecord) against the same YAML with Qlib's
  module paths run by qrun's `workflow` function (what the `qrun` command calls). Time is the
  whole process, as a user waits for it; the indented rows are phases timed inside the same
  processes ("rest": start-up, imports, tracking, saving artifacts, outside the phases).
  alphalab computes the features in a thread while it imports LightGBM and opens its run, so
  its features row is that computation's own time and part of its start-up hides under it;
  its rest is what remains outside the phases. alphalab's feature cache is on (its default)
  and empty at the start: features are written to it as they are computed and read back
  memory-mapped, so its peak counts the feature pages in use (they are part of the RSS),
  not a resident copy of every feature. alphalab records into a
  SQLite store created beforehand (MLflow's one-off schema migrations are not counted), Qlib
  into its `./mlruns` file store. Agreement: the runs' IC, Rank IC and annualised excess
  return with cost.
- tasks: a rolling study of a light task (`benchmarks/light_task.py`: `DataHandlerLP` with a
  `QlibDataLoader` of 10 Alpha158 expressions and Qlib's label, `Fillna` of the features,
  `DropnaLabel` + `CSZScoreNorm` of the label, an OLS `LinearModel`, `SignalRecord`; one
  year to train, the next to validate, then the test segment) over the test segment in 4
  windows of equal length: `RollingGen(step, rtype=ROLL_SD)` + `TrainerR` (`train` +
  `end_train`) + `RecorderCollector` with `RollingGroup`, the same names on both sides, all
  in one process. Every window's handler reads from the train start to the test end. Time:
  generating, training and collecting up to the ensembled predictions, after `init`.
  alphalab records into a SQLite store created beforehand; its feature cache is empty at
  the start and, the windows' handlers being alike, windows after the first read their
  features from it (its default behaviour). Qlib records into MLflow's file store in a
  scratch folder, caches off (its default), keying runs by model class and test segment as
  its `RollingStrategy` does. The indented row trains the same windows through alphalab's
  task pool: a SQLite task store, two `alphalab worker` processes (their start-up
  included), `TrainerRM(skip_run_task=True)` waiting for them; it has no peer because
  Qlib's pool (`TaskManager`, `TrainerRM`) needs MongoDB. Agreement: IC of the ensembled
  predictions against the same label (computed from the store), the correlation of the two
  sides' predictions, windows and rows; for the pool, the share of predictions equal to
  TrainerR's.
- tune: 8 trials of Optuna's TPE sampler (seed 0) over the learning rate and number of
  leaves of a small LightGBM (one thread, deterministic) on the light task's dataset, scored
  by the IC of the test predictions. alphalab: `run_tune` with every trial a child run of the
  study's run (params, workflow, training curve, model and dataset, predictions, IC, each
  boosting round reported to Optuna for pruning), the best params, trials table and plots
  written at the end. Peer: an Optuna study in the same kind of SQLite storage whose
  objective makes the same alphalab calls (build, `setup_data`, `fit`, `predict`, IC)
  without tracking anything. Both processes start with an empty feature cache. Agreement:
  best IC, trials, how many trials had identical params and identical IC (the same seed
  and a deterministic objective give the same study), and the mean seconds per trial
  (Optuna's trial durations), whose difference is alphalab's tracking cost per trial.
"""


def latest_results(scale: str) -> dict[str, Any] | None:
    """The newest results document of ``scale`` under benchmarks/results/, if any."""
    files = sorted(RESULTS.glob(f"{scale}-*.json"))
    return json.loads(files[-1].read_text()) if files else None


def write_docs(doc: dict[str, Any], results_file: Path) -> None:
    """Rewrite docs/performance.md from a results document."""
    machine = doc["machine"]
    lines = [
        "# Performance: alphalab side by side with Qlib 0.9.7",
        "",
        "Reproduce with `make bench` (the medium scale: 300 stocks x 8 years of the simulated "
        "market), or `.venv/bin/python benchmarks/run.py --scale small|medium|large "
        "[--suites data,features] [--repeat 1]`. The first run creates the peer environment "
        "`benchmarks/.peer-env` (pyqlib 0.9.7 and its dependencies) and the markets under "
        "`benchmarks/.work/`; later runs reuse both.",
        "",
        "The same simulated market is an alphalab Parquet store and, converted with "
        "`write_qlib_dir`, a Qlib binary directory (the same float32 values). Every step runs "
        "in a fresh process per side, the sides alternating, and the tables show medians of "
        f"{doc['repeat']} runs. Time is the step's own timed section unless said otherwise; "
        "memory is the peak RSS of the process (interpreter and imports included). "
        "Ratio = peer time / alphalab time (above 1: alphalab is faster). Agreement cells "
        "read alphalab/peer.",
        "",
        f"Run {doc['started']} UTC, {doc['seconds'] / 60:.1f} minutes in all. Machine: "
        f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB RAM, "
        f"{machine['os']}, Python {machine['python']}. The machine was shared with other "
        "work while it ran (load averages below), so times carry that noise; the medians and "
        "the alternation keep both sides under the same conditions.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in doc["versions"].items()) + ".",
        "",
    ]
    for size in doc["sizes"]:
        lines += [f"## {size['label']}", ""]
        for name, entry in size["suites"].items():
            peer = PEER_NAME.get(name, "Qlib 0.9.7")
            lines += [f"### {name} (peer: {peer})", ""]
            if not entry["available"]:
                lines += [f"Not available: {entry['reason']}.", ""]
                continue
            lines.append(harness.format_table(entry["steps"], markdown=True))
            notes = harness.table_notes(entry["steps"])
            load = entry["load_average"]
            lines += ["", *notes, ""] if notes else [""]
            lines += [
                f"Load average (1, 5, 15 min) before {load['before']}, after {load.get('after')}.",
                "",
            ]
    growth = doc if len(doc["sizes"]) > 1 else latest_results("large")
    if growth is not None:
        lines += [
            "## Growth (alphalab | peer)",
            "",
            f"The `large` scale (`benchmarks/run.py --scale large`), run {growth['started']} UTC "
            f"with {growth['repeat']} repetition(s) per side, {growth['seconds'] / 60:.1f} "
            "minutes: seconds and peak MB of each step at three market sizes.",
            "",
            "```",
            harness.growth_table(growth["sizes"]),
            "```",
            "",
        ]
    lines += [
        STEP_NOTES,
        f"Raw numbers (every repetition, per-run load averages): "
        f"`benchmarks/results/{results_file.name}`.",
        "",
    ]
    DOCS.write_text("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--suites", default=",".join(harness.SUITES))
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per side (median)")
    parser.add_argument("--no-docs", action="store_true", help="leave docs/performance.md")
    parser.add_argument(
        "--docs-from", metavar="RESULTS.json", help="only rewrite docs/performance.md from it"
    )
    args = parser.parse_args(argv)
    if args.docs_from:
        path = Path(args.docs_from).resolve()
        doc = json.loads(path.read_text())
        harness.validate_document(doc)
        write_docs(doc, path)
        log(f"docs: {DOCS.relative_to(ROOT)}")
        return
    suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    unknown = set(suites) - set(harness.SUITES)
    if unknown:
        parser.error(f"unknown suite(s) {sorted(unknown)}; choose from {', '.join(harness.SUITES)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    started = dt.datetime.now(dt.UTC)
    began = time.perf_counter()
    ensure_peer_env()
    versions = {**own_versions(), **peer_versions()}
    log(f"scale {args.scale}, suites {', '.join(suites)}, {args.repeat} repetition(s) per side")
    sizes = []
    for size in SCALES[args.scale]:
        log(f"\n# {size.label}")
        spec = prepare_market(size)
        entry: dict[str, Any] = {
            "label": size.label,
            "instruments": size.instruments,
            "start": size.start,
            "end": size.end,
            "suites": {},
        }
        for suite in suites:
            folder = WORK / "runs" / f"{size.instruments}-{size.start[:4]}" / suite
            entry["suites"][suite] = run_suite(suite, spec, folder, args.repeat, args.scale)
            print_suite(suite, entry["suites"][suite], PEER_NAME.get(suite, "Qlib 0.9.7"))
        sizes.append(entry)
    doc = harness.results_document(
        scale=args.scale,
        repeat=args.repeat,
        sizes=sizes,
        machine=harness.machine_info(),
        versions=versions,
        started=started.strftime("%Y-%m-%d %H:%M"),
        seconds=time.perf_counter() - began,
    )
    if len(sizes) > 1:
        log("\n== growth (alphalab | peer) ==")
        log(harness.growth_table(sizes))
    harness.validate_document(doc)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{args.scale}-{started.strftime('%Y%m%dT%H%M')}.json"
    path.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    log(f"\nresults: {path.relative_to(ROOT)} ({doc['seconds'] / 60:.1f} min)")
    if args.scale == "medium" and not args.no_docs:
        write_docs(doc, path)
        log(f"docs: {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
