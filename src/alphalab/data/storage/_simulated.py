"""A deterministic simulated stock market: alphalab's data when none is configured.

The model, per trading day ``t`` and instrument ``i`` (log returns)::

    r[t, i] = beta[i] * m[t] + gamma[i] * s[t, sector(i)] + e[t, i] + a[t, i]

* ``m`` (market) and ``s`` (sectors) and ``e`` (idiosyncratic) are GARCH(1, 1) processes with
  Student-t(4) innovations: fat tails and volatility clustering.
* ``a[t, i] = k * vol[i] * z[t - 1, i]`` is the planted signal: ``z`` is a slowly varying
  latent (AR(1), persistence ``signal_persistence``) that is never stored. It shows up only
  partially in observable data: in past returns (momentum) and in trading volume (volume rises
  with ``z``). Because ``z`` persists, it predicts the label ``Ref($close, -2) /
  Ref($close, -1) - 1``; no stored value contains the future returns themselves.
* Daily simple returns are capped at the price limit (10%), opens carry part of the day's move,
  highs/lows extend beyond open and close, ``vwap = (high + low + 2 * close) / 4``.
* Instruments list and delist mid-sample; suspensions are runs of missing days; dividends and
  splits move the adjustment ``factor`` (prices are adjusted, raw = adjusted / factor).
* Universes (``csi300``, ``csi100`` by default) are the largest instruments by market value,
  reviewed every half year; ``SH000300`` is a cap-weighted index of the largest universe.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from alphalab.data.storage._base import (
    DATETIME_DTYPE,
    VALUE_DTYPE,
    is_sorted_by_key,
    repeat_strings,
    to_datetime64,
)
from alphalab.exceptions import ConfigError

#: Fields of the simulated market, in stored order.
SIMULATED_FIELDS: tuple[str, ...] = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
    "factor",
    "change",
    "amount",
)


@dataclass(frozen=True)
class SimulationConfig:
    """Parameters of the simulated market; equal configs give identical markets.

    Attributes:
        seed: Seed of every random draw.
        n_instruments: Stocks (the benchmark index comes on top).
        start: First calendar day (weekdays minus a few holidays are trading days).
        end: Last calendar day.
        n_sectors: Number of sector factors.
        universes: Universe name -> size (the largest stocks by market value).
        benchmark: Code of the index instrument (cap-weighted over the largest universe).
        listing_fraction: Share of stocks that list after the first day.
        delisting_fraction: Share of stocks that delist before the last day.
        suspension_rate: Daily probability that a suspension starts.
        signal_strength: Scale of the planted signal (0 removes it).
        signal_persistence: AR(1) coefficient of the latent signal.
        limit: Daily price limit as a fraction (0.1 = +-10%).
    """

    seed: int = 0
    n_instruments: int = 400
    start: str = "2015-01-01"
    end: str = "2022-12-31"
    n_sectors: int = 10
    universes: Mapping[str, int] = field(default_factory=lambda: {"csi300": 300, "csi100": 100})
    benchmark: str = "SH000300"
    listing_fraction: float = 0.2
    delisting_fraction: float = 0.08
    suspension_rate: float = 0.002
    signal_strength: float = 1.0
    signal_persistence: float = 0.97
    limit: float = 0.1

    def __post_init__(self) -> None:
        if self.n_instruments < 2:
            raise ConfigError(f"n_instruments must be >= 2; got {self.n_instruments}")
        if self.n_sectors < 1:
            raise ConfigError(f"n_sectors must be >= 1; got {self.n_sectors}")
        for name, size in self.universes.items():
            if name == "all":
                raise ConfigError("The universe 'all' is implicit; do not size it")
            if size < 1:
                raise ConfigError(f"The size of universe {name!r} must be >= 1; got {size}")
        if not 0 <= self.listing_fraction <= 1 or not 0 <= self.delisting_fraction <= 1:
            raise ConfigError("listing_fraction and delisting_fraction must be within [0, 1]")
        if not 0 <= self.signal_persistence < 1:
            raise ConfigError(
                f"signal_persistence must be within [0, 1); got {self.signal_persistence}"
            )
        if not 0 < self.limit <= 1:
            raise ConfigError(f"limit must be within (0, 1]; got {self.limit}")
        if to_datetime64(self.start) >= to_datetime64(self.end):
            raise ConfigError(f"start {self.start!r} must be before end {self.end!r}")

    def to_dict(self) -> dict[str, Any]:
        """The parameters as plain JSON-able values."""
        out = asdict(self)
        out["universes"] = dict(self.universes)
        return out

    def digest(self) -> str:
        """A short hash naming this configuration (used for the cache folder)."""
        text = json.dumps({"model": MODEL_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


#: Bumped whenever the generator changes what it produces for a given config.
MODEL_VERSION = 1


@dataclass(frozen=True)
class SimulatedMarket:
    """A generated market in memory, ready for :func:`write_parquet_store`."""

    calendar: np.ndarray
    listing: pl.DataFrame
    universes: pl.DataFrame
    bars: pl.DataFrame
    fields: tuple[str, ...] = SIMULATED_FIELDS


def _calendar(config: SimulationConfig, rng: np.random.Generator) -> np.ndarray:
    first = to_datetime64(config.start).astype("datetime64[D]")
    last = to_datetime64(config.end).astype("datetime64[D]")
    days = np.arange(first, last + np.timedelta64(1, "D"), dtype="datetime64[D]")
    weekdays = days[np.is_busday(days)]
    holidays = rng.random(weekdays.size) < 10 / 261  # about ten holidays a year
    holidays[0] = False
    return weekdays[~holidays].astype("datetime64[ns]")


def _names(n: int) -> list[str]:
    half = (n + 1) // 2
    return [f"SH{600000 + i:06d}" for i in range(half)] + [
        f"SZ{1 + i:06d}" for i in range(n - half)
    ]


def _garch(
    rng: np.random.Generator, n_days: int, vols: np.ndarray, alpha: float = 0.08, beta: float = 0.9
) -> tuple[np.ndarray, np.ndarray]:
    """GARCH(1, 1) paths with unit-variance Student-t(4) shocks: (returns, conditional vol)."""
    shocks = rng.standard_t(4, size=(n_days, vols.size)) / np.sqrt(2.0)
    target = vols**2
    omega = target * (1 - alpha - beta)
    var = target.copy()
    out = np.empty((n_days, vols.size))
    sigma = np.empty((n_days, vols.size))
    for t in range(n_days):
        s = np.sqrt(var)
        sigma[t] = s
        out[t] = s * shocks[t]
        var = omega + alpha * out[t] ** 2 + beta * var
    return out, sigma


def _runs_mask(
    rng: np.random.Generator, shape: tuple[int, int], rate: float, mean_length: float
) -> np.ndarray:
    """A boolean (days x instruments) mask of runs starting with ``rate`` per day."""
    mask = np.zeros(shape, dtype=bool)
    starts = np.argwhere(rng.random(shape) < rate)
    lengths = rng.geometric(1.0 / mean_length, size=len(starts))
    for (t, i), n in zip(starts, lengths, strict=True):
        mask[t : t + n, i] = True
    return mask


def simulate_market(config: SimulationConfig | None = None) -> SimulatedMarket:
    """Generate the simulated market of ``config`` (deterministic; a few seconds at most)."""
    config = config or SimulationConfig()
    rng = np.random.default_rng(config.seed)
    cal = _calendar(config, rng)
    n_days, n = cal.size, config.n_instruments
    if n_days < 60:
        raise ConfigError(
            f"The simulated calendar {config.start}..{config.end} has {n_days} trading days; "
            "use at least a quarter of a year"
        )
    names = _names(n)

    # Listing spans: most stocks trade from day 0; some list or delist mid-sample.
    list_at = np.zeros(n, dtype=np.int64)
    late = rng.random(n) < config.listing_fraction
    list_at[late] = rng.integers(1, max(2, n_days * 3 // 4), size=int(late.sum()))
    delist_at = np.full(n, n_days - 1, dtype=np.int64)
    leaves = rng.random(n) < config.delisting_fraction
    for i in np.flatnonzero(leaves):
        lo = list_at[i] + max(20, (n_days - list_at[i]) // 4)
        if lo < n_days - 1:
            delist_at[i] = rng.integers(lo, n_days - 1)
    day = np.arange(n_days)[:, None]
    listed = (day >= list_at[None, :]) & (day <= delist_at[None, :])

    # Factors: market, sectors and idiosyncratic noise, all GARCH with fat tails.
    sector = rng.integers(0, config.n_sectors, size=n)
    beta = np.clip(rng.normal(1.0, 0.25, n), 0.3, 2.0)
    gamma = np.clip(rng.normal(1.0, 0.3, n), 0.0, 2.0)
    idio_vol = np.exp(rng.normal(np.log(0.018), 0.3, n))
    vols = np.concatenate([[0.012], np.full(config.n_sectors, 0.007), idio_vol])
    shocks, sigma = _garch(rng, n_days, vols)
    market, sectors, idio = (
        shocks[:, 0],
        shocks[:, 1 : 1 + config.n_sectors],
        shocks[:, 1 + config.n_sectors :],
    )
    idio_sigma = sigma[:, 1 + config.n_sectors :]

    # The planted signal: a persistent latent z; tomorrow's drift is proportional to today's z.
    phi = config.signal_persistence
    z = np.empty((n_days, n))
    z[0] = rng.standard_normal(n)
    innovations = rng.standard_normal((n_days, n)) * np.sqrt(1 - phi**2)
    for t in range(1, n_days):
        z[t] = phi * z[t - 1] + innovations[t]
    drift = np.zeros((n_days, n))
    drift[1:] = 0.1 * config.signal_strength * idio_vol[None, :] * z[:-1]

    log_ret = beta * market[:, None] + gamma * sectors[:, sector] + idio + drift
    simple = np.clip(np.expm1(log_ret), -config.limit, config.limit)

    suspended = _runs_mask(rng, (n_days, n), config.suspension_rate, 5.0) & listed
    suspended[list_at, np.arange(n)] = False  # a stock trades on its first day
    trading = listed & ~suspended
    simple = np.where(trading, simple, 0.0)
    simple[list_at, np.arange(n)] = 0.0  # the first close is the listing price

    # Prices: the adjusted close compounds the returns; factor steps at dividends and splits.
    first_price = np.exp(rng.normal(np.log(12.0), 0.6, n))
    close = first_price * np.cumprod(1.0 + simple, axis=0)
    events = rng.random((n_days, n))
    step = np.where(events < 1 / 250, 1.0 + rng.uniform(0.005, 0.03, (n_days, n)), 1.0)
    step = np.where(events > 1 - 1 / 3000, 2.0, step)
    factor: np.ndarray = np.cumprod(step, axis=0)
    factor = factor / factor[list_at, np.arange(n)][None, :]
    prev_close = np.vstack([close[:1], close[:-1]])
    prev_close[list_at, np.arange(n)] = close[list_at, np.arange(n)] / (
        1.0 + rng.normal(0, 0.02, n)
    )
    overnight = 0.3 * simple + rng.normal(0, 0.2, (n_days, n)) * idio_sigma * 0.5
    lo_limit, hi_limit = prev_close * (1 - config.limit), prev_close * (1 + config.limit)
    open_ = np.clip(prev_close * (1.0 + overnight), lo_limit, hi_limit)
    reach = np.abs(rng.normal(0, 1, (2, n_days, n))) * idio_sigma * 0.6
    high = np.minimum(np.maximum(open_, close) * (1.0 + reach[0]), hi_limit)
    high = np.maximum(high, np.maximum(open_, close))
    low = np.maximum(np.minimum(open_, close) * (1.0 - reach[1]), lo_limit)
    low = np.minimum(low, np.minimum(open_, close))
    vwap = (high + low + 2.0 * close) / 4.0

    # Volume: level per stock, clustering with volatility, spikes with big moves, and the
    # latent z (informed trading) so that volume partially reveals the signal.
    shares = np.exp(rng.normal(np.log(8e8), 0.8, n))
    turnover = np.exp(
        np.log(0.01)
        + 0.8 * np.log(idio_sigma / idio_vol[None, :])
        + 8.0 * np.abs(simple)
        + 0.24 * config.signal_strength * z
        + rng.normal(0, 0.25, (n_days, n))
    )
    raw_close = close / factor
    volume = shares[None, :] * turnover / factor
    amount = vwap * volume
    change = simple.copy()
    change[list_at, np.arange(n)] = np.nan

    # Universes: the largest stocks by market value, reviewed each half year.
    market_value = np.where(listed, raw_close * shares[None, :], np.nan)
    months = cal.astype("datetime64[M]")
    review = np.flatnonzero(
        np.r_[True, (months[1:] != months[:-1]) & np.isin(months[1:].astype(int) % 12, [0, 6])]
    )
    universe_rows = []
    for name, size in config.universes.items():
        for k, t0 in enumerate(review):
            t1 = review[k + 1] - 1 if k + 1 < len(review) else n_days - 1
            score = np.where(listed[t0], np.nan_to_num(market_value[t0], nan=-np.inf), -np.inf)
            top = np.argsort(-score, kind="stable")[:size]
            for i in top[np.isfinite(score[top])]:
                end = min(t1, delist_at[i])
                universe_rows.append((name, int(i), int(t0), int(end)))
    universes = _merge_spans(universe_rows, names, cal)

    # The benchmark index: cap-weighted over the largest universe's members each day.
    biggest = max(config.universes, key=lambda u: config.universes[u]) if config.universes else None
    weights = np.where(trading, np.nan_to_num(market_value), 0.0)
    if biggest is not None:
        member = np.zeros((n_days, n), dtype=bool)
        position = {code: k for k, code in enumerate(names)}
        for row in universes.filter(pl.col("universe") == biggest).iter_rows(named=True):
            col = position[row["instrument"]]
            bounds = np.searchsorted(
                cal, np.array([row["start"], row["end"]], dtype="datetime64[ns]")
            )
            member[int(bounds[0]) : int(bounds[1]) + 1, col] = True
        weights = np.where(member, weights, 0.0)
    weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    index_ret = (weights * simple).sum(axis=1)
    index_ret[0] = 0.0
    index_close = 3000.0 * np.cumprod(1.0 + index_ret)
    index_prev = np.r_[index_close[0], index_close[:-1]]

    def rel(prices: np.ndarray) -> np.ndarray:
        """Weighted mean move of ``prices`` relative to the members' previous closes."""
        return (weights * np.nan_to_num(prices / prev_close - 1.0)).sum(axis=1)

    index_open = index_prev * (1.0 + rel(open_))
    index_high = np.maximum(index_prev * (1.0 + rel(high)), np.maximum(index_open, index_close))
    index_low = np.minimum(index_prev * (1.0 + rel(low)), np.minimum(index_open, index_close))
    index_volume = np.where(trading, volume, 0.0).sum(axis=1)
    index_vwap = (index_high + index_low + 2.0 * index_close) / 4.0
    index_change = np.r_[np.nan, index_ret[1:]]

    # Long frame, sorted by (instrument, datetime): stocks row-major over (instrument, day).
    mask_t = listed.T
    columns = {
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
        "vwap": vwap,
        "factor": factor,
        "change": change,
        "amount": amount,
    }
    suspended_t = suspended.T[mask_t]
    data: dict[str, Any] = {
        "instrument": repeat_strings(names, mask_t.sum(axis=1)),
        "datetime": np.broadcast_to(cal, (n, n_days))[mask_t],
    }
    for key, values in columns.items():
        flat = values.T[mask_t].astype(np.float32)
        flat[suspended_t] = np.nan
        data[key] = flat
    stocks = pl.DataFrame(data)
    index = pl.DataFrame(
        {
            "instrument": np.full(n_days, config.benchmark),
            "datetime": cal,
            "open": index_open,
            "high": index_high,
            "low": index_low,
            "close": index_close,
            "volume": index_volume,
            "vwap": index_vwap,
            "factor": np.ones(n_days),
            "change": index_change,
            "amount": index_vwap * index_volume,
        }
    )
    value_cols = [pl.col(f).cast(VALUE_DTYPE).fill_nan(None) for f in SIMULATED_FIELDS]
    bars = pl.concat(
        [
            frame.select(
                pl.col("instrument").cast(pl.String),
                pl.col("datetime").cast(DATETIME_DTYPE),
                *value_cols,
            )
            for frame in (index, stocks)
        ]
    )
    if not is_sorted_by_key(bars):
        bars = bars.sort("instrument", "datetime")
    listing = pl.DataFrame(
        {
            "instrument": [*names, config.benchmark],
            "start": np.r_[cal[list_at], cal[0]],
            "end": np.r_[cal[delist_at], cal[-1]],
        }
    ).with_columns(pl.col("start", "end").cast(DATETIME_DTYPE))
    all_rows = listing.filter(pl.col("instrument") != config.benchmark).with_columns(
        pl.lit("all").alias("universe")
    )
    universes = pl.concat([all_rows.select("universe", "instrument", "start", "end"), universes])
    return SimulatedMarket(calendar=cal, listing=listing, universes=universes, bars=bars)


def _merge_spans(
    rows: list[tuple[str, int, int, int]], names: list[str], cal: np.ndarray
) -> pl.DataFrame:
    """Merge consecutive review periods of the same member into one span."""
    merged: list[tuple[str, str, np.datetime64, np.datetime64]] = []
    current: dict[tuple[str, int], list[int]] = {}
    for name, i, a, b in sorted(rows, key=lambda r: (r[0], r[1], r[2])):
        key = (name, i)
        span = current.get(key)
        if span is not None and a <= span[1] + 1:
            span[1] = max(span[1], b)
            continue
        if span is not None:
            merged.append((name, names[i], cal[span[0]], cal[span[1]]))
        current[key] = [a, b]
    for (name, i), (a, b) in current.items():
        merged.append((name, names[i], cal[a], cal[b]))
    frame = pl.DataFrame(
        {
            "universe": [m[0] for m in merged],
            "instrument": [m[1] for m in merged],
            "start": np.array([m[2] for m in merged], dtype="datetime64[ns]"),
            "end": np.array([m[3] for m in merged], dtype="datetime64[ns]"),
        },
        schema={
            "universe": pl.String,
            "instrument": pl.String,
            "start": DATETIME_DTYPE,
            "end": DATETIME_DTYPE,
        },
    )
    return frame.sort("universe", "instrument", "start")
