"""Tracking benchmarks: alphalab vs plain MlflowClient on the same SQLite store, same run.

Prints:
1. logging 10,000 metric steps: one ``MlflowClient.log_metric`` call per step, MLflow's
   ``log_batch`` of the same points, and ``R.log_metrics`` + flush (every point checked;
   median of ``--repeat`` runs);
2. ``search_records`` over 10,000 runs with a filter on a metric and a param;
3. starting and ending an empty run: ``R.start`` vs ``create_run`` + ``set_terminated``.

Usage: python benchmarks/bench_tracking.py [--steps 10000] [--per-call-steps 1000]
       [--repeat 3] [--runs 10000] [--empty-runs 50] [--dir DIR]

The per-call baseline takes ~10 ms a point on SQLite, so by default it is timed on the first
``--per-call-steps`` points and scaled to ``--steps`` (printed as such); pass
``--per-call-steps`` equal to ``--steps`` to time it in full.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path


def _fresh_store(folder: Path, name: str) -> str:
    from alphalab.tracking import get_client

    uri = f"sqlite:///{folder / name / 'mlflow.db'}"
    get_client(uri)
    return uri


def bench_logging(folder: Path, steps: int, per_call_steps: int, repeat: int = 3) -> None:
    from mlflow.entities import Metric

    import alphalab
    from alphalab.tracking import R, get_client

    uri = _fresh_store(folder, "logging")
    alphalab.init(tracking_uri=uri, artifact_location=str(folder / "logging" / "artifacts"))
    client = get_client(uri)
    exp_id = client.create_experiment(
        "bench-logging", artifact_location=str(folder / "logging" / "artifacts" / "bench-logging")
    )

    run = client.create_run(exp_id, run_name="per-call")
    t0 = time.perf_counter()
    for step in range(per_call_steps):
        client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1), step=step)
    per_call = (time.perf_counter() - t0) * steps / per_call_steps
    client.set_terminated(run.info.run_id)

    run = client.create_run(exp_id, run_name="log_batch")
    now = int(time.time() * 1000)
    points = [Metric("loss", 1.0 / (s + 1), now + s, s) for s in range(steps)]
    t0 = time.perf_counter()
    for start in range(0, steps, 1000):
        client.log_batch(run.info.run_id, metrics=points[start : start + 1000])
    raw_batch = time.perf_counter() - t0
    client.set_terminated(run.info.run_id)

    timings, complete = [], True
    for _ in range(repeat):
        with R.start(experiment_name="bench-logging", recorder_name="alphalab") as rec:
            t0 = time.perf_counter()
            for step in range(steps):
                R.log_metrics(step=step, loss=1.0 / (step + 1))
            R.flush()
            timings.append(time.perf_counter() - t0)
        history = rec.metric_history("loss")
        complete = complete and history["step"].tolist() == list(range(steps))
    ours = statistics.median(timings)

    scaled = "" if per_call_steps == steps else f" (timed on {per_call_steps}, scaled)"
    print(f"[1] logging {steps:,} metric steps on SQLite")
    print(f"    MlflowClient.log_metric per step : {per_call:8.2f} s{scaled}")
    print(f"    MlflowClient.log_batch (raw)     : {raw_batch:8.2f} s")
    each = ", ".join(f"{t:.2f}" for t in timings)
    print(f"    alphalab R.log_metrics + flush   : {ours:8.2f} s (median of {repeat}: {each})")
    print(f"    speed-up vs per-call             : {per_call / ours:8.1f} x  (goal >= 50 x)")
    print(f"    ratio vs raw log_batch           : {ours / raw_batch:8.2f}")
    print(f"    every point stored exactly once  : {complete} ({len(history):,} rows, each run)")


def _populate_runs(db: Path, exp_id: str, n_runs: int) -> None:
    """Insert ``n_runs`` finished runs straight into MLflow's tables (fast set-up only)."""
    now = int(time.time() * 1000)
    runs, metrics, latest, params, tags = [], [], [], [], []
    for i in range(n_runs):
        run_id = uuid.uuid4().hex
        runs.append(
            (
                run_id,
                f"run{i}",
                "LOCAL",
                "",
                "",
                "bench",
                "FINISHED",
                now,
                now + 1,
                "",
                "active",
                f"/tmp/unused/{run_id}",
                exp_id,
            )
        )
        ic = (i % 100) / 1000
        metrics.append(("IC", ic, now, run_id, 0, 0))
        latest.append(("IC", ic, now, 0, 0, run_id))
        params.append(("model", "lgb" if i % 2 else "linear", run_id))
        params.append(("seed", str(i % 10), run_id))
        tags.append(("mlflow.runName", f"run{i}", run_id))
    con = sqlite3.connect(db)
    with con:
        con.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
            "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
            "artifact_uri, experiment_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            runs,
        )
        con.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES (?,?,?,?,?,?)",
            metrics,
        )
        con.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
            "VALUES (?,?,?,?,?,?)",
            latest,
        )
        con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
        con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
    con.close()


def bench_search(folder: Path, n_runs: int) -> None:
    from alphalab.tracking import R, get_client

    uri = _fresh_store(folder, "search")
    client = get_client(uri)
    exp_id = client.create_experiment(
        "bench-search", artifact_location=str(folder / "search" / "artifacts")
    )
    db = folder / "search" / "mlflow.db"
    _populate_runs(db, exp_id, n_runs)
    manager = R.get_exp_manager(uri)
    query = "metrics.IC > 0.09 and params.model = 'lgb'"
    timings = []
    for _ in range(3):
        t0 = time.perf_counter()
        frame = manager.search_records([exp_id], filter_string=query)
        timings.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    every = manager.search_records([exp_id])
    all_time = time.perf_counter() - t0
    print(f"[2] search_records over {n_runs:,} runs on SQLite")
    print(f"    filter {query!r}: {min(timings):.3f} s best of 3 ({len(frame):,} rows; goal < 1 s)")
    print(f"    no filter (all {len(every):,} runs as a DataFrame): {all_time:.3f} s")


def bench_empty_runs(folder: Path, n: int) -> None:
    import alphalab
    from alphalab.tracking import R, get_client

    uri = _fresh_store(folder, "empty")
    alphalab.init(tracking_uri=uri, artifact_location=str(folder / "empty" / "artifacts"))
    client = get_client(uri)
    exp_id = client.create_experiment(
        "bench-empty-plain", artifact_location=str(folder / "empty" / "artifacts" / "plain")
    )
    R.get_exp(experiment_name="bench-empty-ours")
    import mlflow

    mlflow.set_tracking_uri(uri)  # the fluent API's global state: benchmark only
    mlflow.set_experiment(experiment_id=exp_id)
    plain, fluent, ours = [], [], []
    for _ in range(n):
        t0 = time.perf_counter()
        run = client.create_run(exp_id)
        client.set_terminated(run.info.run_id)
        plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with mlflow.start_run():
            pass
        fluent.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with R.start(experiment_name="bench-empty-ours"):
            pass
        ours.append(time.perf_counter() - t0)
    p, f, o = (statistics.median(x) * 1000 for x in (plain, fluent, ours))
    print(f"[3] start + end an empty run ({n} each, median)")
    print(f"    MlflowClient create_run + set_terminated  : {p:7.1f} ms")
    print(f"    mlflow.start_run() (MLflow's context tags) : {f:7.1f} ms")
    print(
        f"    alphalab with R.start() (with provenance)  : {o:7.1f} ms  "
        f"(ratio {o / p:.2f} vs client, {o / f:.2f} vs mlflow.start_run)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--per-call-steps", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--empty-runs", type=int, default=50)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="alphalab-bench-"))
    print(f"stores under {folder}")
    bench_logging(folder, args.steps, min(args.per_call_steps, args.steps), args.repeat)
    bench_search(folder, args.runs)
    bench_empty_runs(folder, args.empty_runs)


if __name__ == "__main__":
    main()
