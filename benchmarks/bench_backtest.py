"""Time the TopkDropout backtest on a synthetic market.

300 instruments x 500 trading days (about two years), random-walk prices with suspensions and
limit-up/down days, random scores; topk=50, n_drop=5, trade_unit=100 with a factor.

    .venv/bin/python benchmarks/bench_backtest.py [--instruments 300] [--days 500] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from alphalab.evaluate import MarketData, TopkDropoutStrategy, backtest


def synthetic_market(n_inst: int, n_days: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """A long market frame (datetime, instrument, close, open, vwap, change, factor) and scores."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=n_days)
    names = [f"SH{600000 + i}" for i in range(n_inst)]
    returns = rng.normal(0.0003, 0.02, size=(n_days, n_inst))
    limit_days = rng.random((n_days, n_inst)) < 0.01
    returns[limit_days] = np.sign(rng.normal(size=limit_days.sum())) * 0.1
    close = 10.0 * np.exp(np.cumsum(np.log1p(returns), axis=0))
    change = np.vstack([np.full((1, n_inst), np.nan), close[1:] / close[:-1] - 1])
    suspended = rng.random((n_days, n_inst)) < 0.02
    close_obs = np.where(suspended, np.nan, close)
    factor = np.repeat(rng.uniform(0.5, 3.0, size=(1, n_inst)), n_days, axis=0)
    index = pd.MultiIndex.from_product([dates, names], names=["datetime", "instrument"])
    frame = pd.DataFrame(
        {
            "close": close_obs.ravel(),
            "open": (close_obs * (1 + rng.normal(0, 0.005, close.shape))).ravel(),
            "vwap": (close_obs * (1 + rng.normal(0, 0.003, close.shape))).ravel(),
            "change": np.where(suspended, np.nan, change).ravel(),
            "factor": factor.ravel(),
        },
        index=index,
    ).reset_index()
    scores = pd.Series(rng.normal(size=n_days * n_inst), index=index, name="score")
    return frame, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instruments", type=int, default=300)
    parser.add_argument("--days", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    frame, scores = synthetic_market(args.instruments, args.days)
    t0 = time.perf_counter()
    market = MarketData.from_frame(
        frame, benchmark=pd.Series(0.0003, index=frame["datetime"].unique())
    )
    t_market = time.perf_counter() - t0

    strategy = TopkDropoutStrategy(signal=scores, topk=50, n_drop=5)
    exchange = {"limit_threshold": 0.095, "deal_price": "close", "trade_unit": 100}
    timings = []
    result = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = backtest(strategy, market, exchange_kwargs=exchange)
        timings.append(time.perf_counter() - t0)
    assert result is not None
    best, median = min(timings), float(np.median(timings))
    n_days = len(result.report)
    print(f"market: {args.instruments} instruments x {args.days} days")
    print(f"MarketData.from_frame: {t_market * 1000:.1f} ms")
    print(f"backtest (topk=50, n_drop=5, {n_days} trading days, {len(result.orders)} orders):")
    print(f"  best {best * 1000:.1f} ms, median {median * 1000:.1f} ms over {args.repeat} runs")
    print(f"  {best / n_days * 1e6:.0f} us per trading day")
    print(f"final account: {result.report['account'].iloc[-1]:.2f}")
    print(result.port_analysis())


if __name__ == "__main__":
    main()
