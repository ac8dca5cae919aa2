"""Compare alphalab's TopkDropout backtest with Qlib 0.9.7's on the same synthetic market.

Needs Qlib in a separate virtual environment (not a dependency of alphalab):

    python3 -m venv benchmarks/.peer-env && benchmarks/.peer-env/bin/pip install pyqlib==0.9.7
    .venv/bin/python benchmarks/compare_qlib_backtest.py [--instruments 300] [--days 500]

The synthetic market of bench_backtest.py is written as a Qlib data directory under
benchmarks/.work/ (float32, so both sides read the same rounded prices); the Qlib side runs in
the peer environment as a subprocess and hands its daily report back as CSV. Prints both
timings, their ratio, and the largest differences of the daily report columns.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "qlib_compare"
PEER_PYTHON = HERE / ".peer-env" / "bin" / "python"
FIELDS = ("close", "open", "vwap", "change", "factor", "volume")
EXCHANGE = {
    "limit_threshold": 0.095,
    "deal_price": "close",
    "open_cost": 0.0005,
    "close_cost": 0.0015,
    "min_cost": 5.0,
    "trade_unit": 100,
}


def write_qlib_dir(frame: pd.DataFrame, calendar: pd.DatetimeIndex, root: Path) -> None:
    """Write a long frame as Qlib's binary layout: calendars, instruments, features."""
    (root / "calendars").mkdir(parents=True, exist_ok=True)
    (root / "instruments").mkdir(parents=True, exist_ok=True)
    (root / "calendars" / "day.txt").write_text(
        "\n".join(d.strftime("%Y-%m-%d") for d in calendar) + "\n"
    )
    first, last = calendar[0].strftime("%Y-%m-%d"), calendar[-1].strftime("%Y-%m-%d")
    names = sorted(frame["instrument"].unique())
    (root / "instruments" / "all.txt").write_text("".join(f"{n}\t{first}\t{last}\n" for n in names))
    wide = frame.set_index(["datetime", "instrument"]).unstack("instrument").reindex(calendar)
    for name in names:
        folder = root / "features" / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        for field in FIELDS:
            values = wide[(field, name)].to_numpy(dtype="float32")
            data = np.concatenate([np.array([0], dtype="<f4"), values.astype("<f4")])
            data.tofile(folder / f"{field}.day.bin")


def strategy_options(args: argparse.Namespace) -> dict[str, object]:
    return {
        "hold_thresh": args.hold_thresh,
        "only_tradable": args.only_tradable,
        "forbid_all_trade_at_limit": not args.allow_trade_at_limit,
    }


def qlib_side(args: argparse.Namespace) -> None:
    """Run in the peer environment: Qlib's backtest, report written as CSV."""
    import qlib
    from qlib.contrib.evaluate import backtest_daily
    from qlib.contrib.strategy import TopkDropoutStrategy

    qlib.init(provider_uri=str(WORK / "qlib_data"), region="cn", kernels=1)
    pred = pd.read_csv(WORK / "pred.csv", parse_dates=["datetime"]).set_index(
        ["datetime", "instrument"]
    )["score"]
    bench = pd.read_csv(WORK / "bench.csv", parse_dates=["datetime"]).set_index("datetime")["bench"]
    strategy = TopkDropoutStrategy(signal=pred, topk=50, n_drop=5, **strategy_options(args))
    t0 = time.perf_counter()
    report, positions = backtest_daily(
        start_time=args.start,
        end_time=args.end,
        strategy=strategy,
        account=1e8,
        benchmark=bench,
        exchange_kwargs={**EXCHANGE, "deal_price": args.deal_price},
    )
    elapsed = time.perf_counter() - t0
    from qlib.contrib.eva.alpha import calc_ic, calc_long_short_return

    sig = pd.read_csv(WORK / "signal.csv", parse_dates=["datetime"])
    sig = sig.set_index(["datetime", "instrument"])
    ic, ric = calc_ic(sig["pred"], sig["label"])
    long_short, long_avg = calc_long_short_return(sig["pred"], sig["label"])
    frame = pd.DataFrame({"ic": ic, "ric": ric, "long_short": long_short, "long_avg": long_avg})
    frame.to_csv(WORK / "qlib_signal.csv", float_format="%.17g")
    report.to_csv(WORK / "qlib_report.csv", float_format="%.17g")
    rows = [
        (date, code, position.get_stock_amount(code))
        for date, position in positions.items()
        for code in position.get_stock_list()
    ]
    held = pd.DataFrame(rows, columns=["datetime", "instrument", "amount"])
    held.to_csv(WORK / "qlib_positions.csv", index=False, float_format="%.17g")
    (WORK / "qlib_seconds.txt").write_text(f"{elapsed}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instruments", type=int, default=300)
    parser.add_argument("--days", type=int, default=500)
    parser.add_argument("--deal-price", default="close", choices=["close", "open", "vwap"])
    parser.add_argument("--hold-thresh", type=int, default=1)
    parser.add_argument("--only-tradable", action="store_true")
    parser.add_argument("--allow-trade-at-limit", action="store_true")
    parser.add_argument("--qlib-side", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start", help=argparse.SUPPRESS)
    parser.add_argument("--end", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.qlib_side:
        qlib_side(args)
        return
    if not PEER_PYTHON.exists():
        sys.exit(f"Qlib's environment is missing: create {PEER_PYTHON.parent.parent} (see --help)")

    sys.path.insert(0, str(HERE))
    from bench_backtest import synthetic_market

    from alphalab.evaluate import (
        MarketData,
        TopkDropoutStrategy,
        backtest,
        calc_ic,
        calc_long_short_return,
    )

    frame, scores = synthetic_market(args.instruments, args.days)
    frame["volume"] = 1e7
    for field in FIELDS:  # both sides read the float32 values of Qlib's binary files
        frame[field] = frame[field].astype("float32").astype("float64")
    calendar = pd.DatetimeIndex(sorted(frame["datetime"].unique()))
    WORK.mkdir(parents=True, exist_ok=True)
    write_qlib_dir(frame, calendar, WORK / "qlib_data")
    # Qlib needs a calendar day after the end of the backtest: stop one day before the data ends.
    start, end = calendar[1], calendar[-2]
    pred = scores[scores.index.get_level_values(0) <= end]
    pred.to_frame().to_csv(WORK / "pred.csv", float_format="%.17g")
    bench = pd.Series(np.random.default_rng(1).normal(0.0003, 0.01, len(calendar)), index=calendar)
    bench.rename_axis("datetime").rename("bench").to_csv(WORK / "bench.csv", float_format="%.17g")

    market = MarketData.from_frame(frame, benchmark=bench)
    # Label: the next day's close-to-close return (rounded, so that ties occur), some missing.
    label = (market.close.shift(-1) / market.close - 1).round(3).stack()
    label.index = label.index.set_names(["datetime", "instrument"])
    signal = pd.DataFrame({"pred": pred.round(2), "label": label.reindex(pred.index)})
    signal.to_csv(WORK / "signal.csv", float_format="%.17g")
    strategy = TopkDropoutStrategy(signal=pred, topk=50, n_drop=5, **strategy_options(args))
    exchange = {**EXCHANGE, "deal_price": args.deal_price}
    t0 = time.perf_counter()
    ours = backtest(strategy, market, start_time=start, end_time=end, exchange_kwargs=exchange)
    ours_seconds = time.perf_counter() - t0

    subprocess.run(
        [
            str(PEER_PYTHON),
            __file__,
            "--qlib-side",
            "--start",
            str(start.date()),
            "--end",
            str(end.date()),
            *sys.argv[1:],
        ],
        check=True,
    )
    theirs = pd.read_csv(WORK / "qlib_report.csv", index_col=0, parse_dates=True)
    qlib_seconds = float((WORK / "qlib_seconds.txt").read_text())

    print(f"{args.instruments} instruments x {len(ours.report)} trading days, topk=50 n_drop=5")
    print(
        f"alphalab backtest: {ours_seconds:.3f} s; Qlib 0.9.7 backtest_daily: "
        f"{qlib_seconds:.2f} s; ratio {qlib_seconds / ours_seconds:.0f}x"
    )
    common = ours.report.index.intersection(theirs.index)
    print(f"days: alphalab {len(ours.report)}, Qlib {len(theirs)}, common {len(common)}")
    held = pd.read_csv(WORK / "qlib_positions.csv", parse_dates=["datetime"])
    theirs_held = set(zip(held["datetime"], held["instrument"], strict=True))
    ours_held = set(ours.positions.index)
    print(
        f"holdings (date, instrument): alphalab {len(ours_held)}, Qlib {len(theirs_held)}, "
        f"only alphalab {len(ours_held - theirs_held)}, only Qlib {len(theirs_held - ours_held)}"
    )
    for column in ("return", "cost", "turnover", "account", "bench"):
        diff = (ours.report.loc[common, column] - theirs.loc[common, column]).abs()
        if column == "account":  # relative to the account's size
            diff = diff / theirs.loc[common, column].abs()
        print(
            f"  max |diff| {column:9s} {diff.max():.3e}  (days differing > 1e-9: "
            f"{int((diff > 1e-9).sum())})"
        )

    ic, ric = calc_ic(signal["pred"], signal["label"])
    long_short, long_avg = calc_long_short_return(signal["pred"], signal["label"])
    mine = pd.DataFrame({"ic": ic, "ric": ric, "long_short": long_short, "long_avg": long_avg})
    other = pd.read_csv(WORK / "qlib_signal.csv", index_col=0, parse_dates=True)
    for column in mine.columns:
        diff = (mine[column] - other[column].reindex(mine.index)).abs()
        both_nan = mine[column].isna() & other[column].reindex(mine.index).isna()
        print(
            f"  max |diff| {column:10s} {diff.max():.3e}  (NaN on one side only: "
            f"{int((mine[column].isna() ^ other[column].reindex(mine.index).isna()).sum())}, "
            f"on both: {int(both_nan.sum())})"
        )


if __name__ == "__main__":
    main()
