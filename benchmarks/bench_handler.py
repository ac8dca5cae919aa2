"""The Alpha158 handler end to end on the simulated market: first run, then the cached run.

Usage::

    python benchmarks/bench_handler.py [--instruments 300] [--start 2015-01-01] [--end 2022-12-31]

Writes a simulated market (the universe ``csi300`` = every stock generated), then runs, each in
a fresh process so peak memory is its own: the handler with an empty feature cache (read the
store, compute the 158 features and the label, process), and the same request again (read from
the cache). Prints wall time and peak RSS; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
import alphalab
from alphalab.data import Alpha158
store_uri, cache_dir, start, end = sys.argv[1:5]
alphalab.init(provider_uri=store_uri, cache_dir=cache_dir)
t0 = time.perf_counter()
handler = Alpha158(instruments="csi300", start_time=start, end_time=end,
                   fit_start_time=start, fit_end_time=end)
handler.setup_data()
rows = handler.fetch_polars(data_key="learn").height
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall": wall, "peak_mb": peak, "rows": rows}))
"""


def run_child(store: str, cache: str, start: str, end: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, store, cache, start, end],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instruments", type=int, default=300)
    parser.add_argument("--start", default="2015-01-01")
    parser.add_argument("--end", default="2022-12-31")
    args = parser.parse_args()

    from alphalab.data import SimulationConfig, write_simulated_store

    with tempfile.TemporaryDirectory(prefix="alphalab-bench-") as tmp:
        t0 = time.perf_counter()
        config = SimulationConfig(
            n_instruments=args.instruments,
            start=args.start,
            end=args.end,
            universes={"csi300": args.instruments},
        )
        store = write_simulated_store(Path(tmp) / "store", config)
        generated = time.perf_counter() - t0
        cache = str(Path(tmp) / "cache")
        first = run_child(str(store.uri), cache, args.start, args.end)
        second = run_child(str(store.uri), cache, args.start, args.end)
    print(
        f"market: {args.instruments} instruments, {args.start}..{args.end} "
        f"(generated in {generated:.1f}s); learn rows: {int(first['rows'])}"
    )
    print(f"{'run':<22}{'wall (s)':>10}{'peak RSS (MB)':>16}")
    print(f"{'first (no cache)':<22}{first['wall']:>10.2f}{first['peak_mb']:>16.0f}")
    print(f"{'second (cached)':<22}{second['wall']:>10.2f}{second['peak_mb']:>16.0f}")
    print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
