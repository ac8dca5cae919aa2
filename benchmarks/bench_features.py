"""Alpha158 (or Alpha360) on a long frame: wall time, peak memory, effect of sharing.

Usage::

    python benchmarks/bench_features.py                      # 300 instruments x 2000 days
    python benchmarks/bench_features.py --instruments 50 --days 500 --handler alpha360
    python benchmarks/bench_features.py --source mypkg.mymodule:load_frame

``--source`` names a function ``() -> polars.DataFrame`` returning a long frame (datetime,
instrument, open, high, low, close, vwap, volume), e.g. a reader of the market store; by default
a random OHLCV market is generated with numpy. Each measurement runs in a fresh process so that
peak memory (max RSS) is its own; figures are printed, never asserted. CPU time is printed
beside wall time because a shared machine's load changes the wall time.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import polars as pl


def synthetic_market(n_instruments: int, n_days: int, seed: int = 0) -> pl.DataFrame:
    """Random OHLCV with 3% suspended days (NaN rows), sorted by (instrument, datetime)."""
    rng = np.random.default_rng(seed)
    n = n_instruments * n_days
    returns = rng.normal(0.0002, 0.02, (n_instruments, n_days))
    close = (10 * np.exp(np.cumsum(returns, axis=1))).ravel()
    open_ = close * np.exp(rng.normal(0, 0.01, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, n)))
    vwap = (open_ + high + low + close) / 4
    volume = rng.lognormal(13, 1, n)
    columns = {"open": open_, "high": high, "low": low, "close": close, "vwap": vwap}
    suspended = rng.random(n) < 0.03
    for values in (*columns.values(), volume):
        values[suspended] = np.nan
    dates = np.arange(np.datetime64("2015-01-05"), np.datetime64("2015-01-05") + n_days)
    return pl.DataFrame(
        {
            "datetime": np.tile(dates, n_instruments),
            "instrument": np.repeat([f"SH{600000 + i}" for i in range(n_instruments)], n_days),
            **columns,
            "volume": volume,
        }
    )


def _load(args: argparse.Namespace) -> pl.DataFrame:
    if args.source:
        module, _, name = args.source.partition(":")
        frame = getattr(importlib.import_module(module), name)()
        if not isinstance(frame, pl.DataFrame):
            raise TypeError(f"{args.source} returned {type(frame).__name__}, not a DataFrame")
        return frame
    return synthetic_market(args.instruments, args.days)


def _measure(args: argparse.Namespace) -> None:
    """One measurement in this process; prints one JSON line."""
    from alphalab.data.expr import ExpressionSet, alpha158, alpha360

    frame = _load(args)
    expressions, names = (alpha158 if args.handler == "alpha158" else alpha360)()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu_before = os.times()
    start = time.perf_counter()
    es = ExpressionSet(expressions, names, share=args.mode == "shared")
    out = es.evaluate(frame)
    seconds = time.perf_counter() - start
    cpu_after = os.times()
    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    plan = es.plan
    print(
        json.dumps(
            {
                "mode": args.mode,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "load_average": os.getloadavg()[0],
                "rows": frame.height,
                "input_mb": frame.estimated_size("mb"),
                "output_mb": out.estimated_size("mb"),
                "peak_rss_mb": rss_after / 1024,
                "peak_growth_mb": (rss_after - rss_before) / 1024,
                "nodes": plan.n_nodes,
                "references": plan.n_references,
                "temporaries": plan.n_shared,
                "stages": len(plan.batches),
                "lookback": es.lookback,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instruments", type=int, default=300)
    parser.add_argument("--days", type=int, default=2000)
    parser.add_argument("--handler", choices=["alpha158", "alpha360"], default="alpha158")
    parser.add_argument("--source", default="", help="module:function returning the frame")
    parser.add_argument("--modes", default="shared,unshared")
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # internal: one measurement
    args = parser.parse_args()
    if args.mode:
        _measure(args)
        return

    results = {}
    for mode in args.modes.split(","):
        command = [sys.executable, __file__, "--mode", mode, "--handler", args.handler]
        command += ["--instruments", str(args.instruments), "--days", str(args.days)]
        if args.source:
            command += ["--source", args.source]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])

    first = next(iter(results.values()))
    print(
        f"{args.handler}: {first['rows']:,} rows ({args.instruments} instruments x "
        f"{args.days} days unless --source), input {first['input_mb']:.0f} MB, "
        f"output {first['output_mb']:.0f} MB, look-back {first['lookback']} days"
    )
    for mode, r in results.items():
        print(
            f"  {mode:9s} {r['seconds']:6.2f} s wall, {r['cpu_seconds']:6.2f} s CPU "
            f"(load average {r['load_average']:.1f})   peak RSS {r['peak_rss_mb']:6.0f} MB "
            f"(+{r['peak_growth_mb']:.0f} MB while computing)   operator nodes evaluated: "
            f"{r['nodes'] if mode == 'shared' else r['references']}, "
            f"temporary columns: {r['temporaries']}, stages: {r['stages']}"
        )
    if {"shared", "unshared"} <= results.keys():
        ratio = results["unshared"]["seconds"] / results["shared"]["seconds"]
        print(f"  sharing common sub-expressions is {ratio:.1f}x faster")


if __name__ == "__main__":
    main()
