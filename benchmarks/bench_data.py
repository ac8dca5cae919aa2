"""Market data read benchmark: Parquet store vs a Qlib binary directory, measured in one run.

Reads close/open/high/low/volume/vwap for 300 instruments x 8 years with:

* ``parquet``   - alphalab's Parquet store (``ParquetMarketStore.read``);
* ``qlib-bin``  - the same data as a Qlib binary directory, read in place by alphalab
  (``QlibBinMarketStore.read``, same long Polars frame);
* ``numpy+pandas`` - a plain reader of the Qlib directory written the way Qlib's providers
  work: ``np.fromfile`` per (instrument, field), one pandas frame per instrument, concatenated
  into a (instrument, datetime)-indexed frame.

Each reader runs in a fresh subprocess (so peak memory is its own): the first read (cold
process, warm OS file cache) and the best of ``--repeat`` reads are timed, and the peak RSS
growth during the first read is compared with the size of the result.

Usage: ``.venv/bin/python benchmarks/bench_data.py [--instruments 300] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

FIELDS = ["close", "open", "high", "low", "volume", "vwap"]
WORK = Path(__file__).resolve().parent / ".work"


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> float:
    """Reset the peak RSS (Linux) and return the current RSS in MB."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def _read_numpy_pandas(root: Path, codes: list[str]) -> object:
    import numpy as np
    import pandas as pd

    calendar = pd.DatetimeIndex(
        pd.to_datetime((root / "calendars" / "day.txt").read_text().split())
    )
    frames = {}
    for code in codes:
        columns = {}
        start = end = None
        for field in FIELDS:
            raw = np.fromfile(root / "features" / code.lower() / f"{field}.day.bin", dtype="<f4")
            first = int(raw[0])
            columns[field] = raw[1:]
            start, end = first, first + raw.size - 1
        frames[code] = pd.DataFrame(columns, index=calendar[start:end])
    return pd.concat(frames, names=["instrument", "datetime"])


def _child(kind: str, root: str, repeat: int) -> None:
    """Run one reader and print its measurements as JSON."""
    import polars as pl

    from alphalab.data import ParquetMarketStore, QlibBinMarketStore

    path = Path(root)
    if kind == "parquet":
        store: ParquetMarketStore | QlibBinMarketStore = ParquetMarketStore(path)
    else:
        store = QlibBinMarketStore(path)
    codes = [c for c in store.listing().get_column("instrument").to_list() if c != "SH000300"]
    store.calendar_array()  # metadata is loaded before timing

    def read() -> object:
        if kind == "numpy+pandas":
            return _read_numpy_pandas(path, codes)
        return store.read(FIELDS, codes)

    before = _reset_peak()
    began = time.perf_counter()
    result = read()
    first = time.perf_counter() - began
    peak = _status_mb("VmHWM") - before
    if isinstance(result, pl.DataFrame):
        size, rows = result.estimated_size() / 2**20, result.height
    else:
        size = float(result.memory_usage(deep=True).sum()) / 2**20  # type: ignore[attr-defined]
        rows = len(result)  # type: ignore[arg-type]
    del result
    best = first
    for _ in range(repeat):
        began = time.perf_counter()
        read()
        best = min(best, time.perf_counter() - began)
    print(json.dumps({"first": first, "best": best, "peak": peak, "size": size, "rows": rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instruments", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], args.repeat)
        return

    import shutil

    from alphalab.data import SimulationConfig, write_qlib_dir, write_simulated_store

    WORK.mkdir(exist_ok=True)
    store_dir, qlib_dir = WORK / "store", WORK / "qlib"
    shutil.rmtree(store_dir, ignore_errors=True)
    shutil.rmtree(qlib_dir, ignore_errors=True)
    config = SimulationConfig(
        n_instruments=args.instruments, start="2015-01-01", end="2022-12-31", seed=0
    )
    began = time.perf_counter()
    store = write_simulated_store(store_dir, config)
    generated = time.perf_counter() - began
    write_qlib_dir(store, qlib_dir)
    print(
        f"simulated market: {args.instruments} instruments x {len(store.calendar())} days, "
        f"generated and written in {generated:.2f} s; Parquet store "
        f"{store.size_on_disk() / 2**20:.1f} MB, Qlib directory "
        f"{sum(f.stat().st_size for f in qlib_dir.rglob('*') if f.is_file()) / 2**20:.1f} MB"
    )
    readers = [("parquet", store_dir), ("qlib-bin", qlib_dir), ("numpy+pandas", qlib_dir)]
    results = {}
    for kind, root in readers:
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(root), "--repeat", str(args.repeat)],
            capture_output=True,
            text=True,
            check=True,
        )
        results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    base = results["parquet"]
    print(f"\nreading {', '.join(FIELDS)} for {args.instruments} instruments, all days")
    header = (
        f"{'reader':<14}{'rows':>9}{'first s':>9}{'best s':>9}{'x parquet':>11}"
        f"{'peak MB':>9}{'result MB':>11}{'peak/result':>13}"
    )
    print(header)
    print("-" * len(header))
    for kind, r in results.items():
        print(
            f"{kind:<14}{r['rows']:>9}{r['first']:>9.3f}{r['best']:>9.3f}"
            f"{r['best'] / base['best']:>11.2f}{r['peak']:>9.1f}{r['size']:>11.1f}"
            f"{r['peak'] / max(r['size'], 1e-9):>13.2f}"
        )


if __name__ == "__main__":
    main()
