"""Compare alphalab's feature values (and time) with Qlib's on the same data.

Qlib is not a dependency: install it into a virtual environment of its own and pass that
environment's Python::

    python -m venv /tmp/qlib-env && /tmp/qlib-env/bin/pip install pyqlib
    python benchmarks/compare_qlib_features.py --qlib-python PATH/TO/QLIB/ENV/bin/python

The script writes a synthetic market (see ``bench_features.synthetic_market``; values rounded to
float32 as Qlib stores them) into a Qlib data directory, lets Qlib compute Alpha158 plus a few
more operators with ``D.features``, computes the same with alphalab, and prints which features
differ beyond float32 rounding and on how many rows. ``--no-missing`` fills the suspended days,
which removes every difference that comes from NaN handling (see ``alphalab.data.expr``'s
operator notes: comparisons with NaN, Slope/IdxMax with gaps, WMA).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_features import synthetic_market

from alphalab.data.expr import alpha158, compute_features

FIELDS = ["open", "high", "low", "close", "vwap", "volume"]
EXTRA = [
    "WMA($close, 5)",
    "EMA($close, 10)",
    "EMA($close, 0.3)",
    "Skew($close, 10)",
    "Kurt($close, 10)",
    "Med($close, 10)",
    "Count($close, 10)",
    "Var($close, 10)",
    "Cov($close, $volume, 10)",
    "Delta($close, 3)",
    "Sum($close, 0)",
    "Ref($close, -2)/Ref($close, -1) - 1",
]

QLIB_SCRIPT = """
import pickle, sys, time
import qlib
from qlib.data import D
root, kernels = sys.argv[1], int(sys.argv[2])
qlib.init(provider_uri=root, region="cn", expression_cache=None, dataset_cache=None,
          kernels=kernels)
exprs = pickle.load(open(root + "/exprs.pkl", "rb"))
start = time.perf_counter()
df = D.features(D.instruments("all"), exprs, freq="day")
seconds = time.perf_counter() - start
df.columns = [f"c{i}" for i in range(len(exprs))]
pickle.dump((seconds, df.reset_index()), open(root + "/qlib.pkl", "wb"))
"""


def write_qlib_dir(frame: pl.DataFrame, root: Path) -> None:
    """Qlib's day-frequency layout: calendar, instrument list, float32 .bin per field."""
    dates = frame.get_column("datetime").unique().sort().to_list()
    (root / "calendars").mkdir(parents=True)
    (root / "instruments").mkdir()
    (root / "calendars" / "day.txt").write_text("".join(f"{d}\n" for d in dates))
    index = {d: i for i, d in enumerate(dates)}
    lines = []
    for (instrument,), g in frame.group_by(["instrument"], maintain_order=True):
        folder = root / "features" / str(instrument).lower()
        folder.mkdir(parents=True)
        first = index[g.get_column("datetime")[0]]
        for field in [*FIELDS, "factor"]:
            values = (
                np.ones(g.height) if field == "factor" else g.get_column(field).to_numpy()
            ).astype("<f4")
            np.concatenate([np.array([first], "<f4"), values]).tofile(folder / f"{field}.day.bin")
        lines.append(
            f"{instrument}\t{g.get_column('datetime')[0]}\t{g.get_column('datetime')[-1]}\n"
        )
    (root / "instruments" / "all.txt").write_text("".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qlib-python", required=True, help="a Python with pyqlib installed")
    parser.add_argument("--instruments", type=int, default=20)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--kernels", type=int, default=1, help="Qlib's worker processes")
    parser.add_argument("--no-missing", action="store_true", help="fill suspended days")
    args = parser.parse_args()

    frame = synthetic_market(args.instruments, args.days, seed=3)
    if args.no_missing:
        frame = frame.with_columns(
            pl.col(c).fill_nan(None).forward_fill().backward_fill().over("instrument")
            for c in FIELDS
        )
    frame = frame.with_columns(pl.col(c).cast(pl.Float32).cast(pl.Float64) for c in FIELDS)
    expressions, names = alpha158()
    expressions, names = expressions + EXTRA, names + EXTRA

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_qlib_dir(frame, root)
        pd.to_pickle(expressions, root / "exprs.pkl")
        command = [args.qlib_python, "-c", QLIB_SCRIPT, str(root), str(args.kernels)]
        subprocess.run(command, check=True, capture_output=True, text=True)
        qlib_seconds, theirs = pd.read_pickle(root / "qlib.pkl")

    start = time.perf_counter()
    ours = compute_features(frame, expressions, [f"c{i}" for i in range(len(expressions))])
    our_seconds = time.perf_counter() - start
    ours_pd = ours.to_pandas()
    ours_pd["datetime"] = pd.to_datetime(ours_pd["datetime"])
    both = ours_pd.merge(theirs, on=["datetime", "instrument"], suffixes=("", "_qlib"))
    print(
        f"{frame.height:,} rows, {len(expressions)} expressions: Qlib {qlib_seconds:.2f} s "
        f"(kernels={args.kernels}), alphalab {our_seconds:.2f} s; {len(both):,} rows compared"
    )
    differing = 0
    for i, (name, expression) in enumerate(zip(names, expressions, strict=True)):
        a = both[f"c{i}"].to_numpy(float)
        b = both[f"c{i}_qlib"].to_numpy(float)
        nan_mismatch = int((np.isnan(a) != np.isnan(b)).sum())
        present = ~np.isnan(a) & ~np.isnan(b)
        far = int((~np.isclose(a[present], b[present], rtol=1e-4, atol=1e-5)).sum())
        if nan_mismatch or far:
            differing += 1
            print(
                f"  {name:8s} {expression[:60]:60s} NaN differs on {nan_mismatch}, value on {far}"
            )
    print(f"{differing} of {len(expressions)} expressions differ beyond float32 rounding")


if __name__ == "__main__":
    main()
