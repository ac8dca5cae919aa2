from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from alphalab.data import SIMULATED_FIELDS, SimulationConfig, simulate_market
from alphalab.exceptions import ConfigError

# The market of the planted-signal check: big enough for a stable IC, small enough to be fast.
SIGNAL_MARKET = {"n_instruments": 150, "start": "2016-01-01", "end": "2021-12-31", "seed": 11}
LABEL = "label"


def _features(bars: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """A handful of Alpha158-like momentum/volume features and the Qlib label, per instrument."""
    c, v = pl.col("close"), pl.col("volume")
    features = {
        "roc5": c / c.shift(5) - 1,
        "roc20": c / c.shift(20) - 1,
        "roc60": c / c.shift(60) - 1,
        "vma60": v / v.rolling_mean(60, min_samples=1),
        "vma5_60": v.rolling_mean(5, min_samples=1) / v.rolling_mean(60, min_samples=1),
        "std20": (c / c.shift(1)).rolling_std(20, min_samples=2),
    }
    names = list(features)
    frame = bars.with_columns(
        **{k: e.over("instrument") for k, e in features.items()},
        **{LABEL: (c.shift(-2) / c.shift(-1) - 1).over("instrument")},
    ).drop_nulls([*names, LABEL])
    ranks = [((pl.col(k).rank() / pl.len()) - 0.5).over("datetime").alias(k) for k in names]
    frame = frame.with_columns(*ranks).with_columns(
        ((pl.col(LABEL) - pl.col(LABEL).mean()) / pl.col(LABEL).std()).over("datetime").alias("y")
    )
    return frame, names


def _out_of_sample_ic(config: SimulationConfig) -> float:
    """Fit a ridge regression on 2016-2019, return the mean daily IC over 2021."""
    market = simulate_market(config)
    bars = market.bars.filter(pl.col("instrument") != config.benchmark)
    frame, names = _features(bars)
    train = frame.filter(pl.col("datetime") < pl.datetime(2020, 1, 1))
    test = frame.filter(pl.col("datetime") >= pl.datetime(2021, 1, 1))
    x, y = train.select(names).to_numpy(), train.get_column("y").to_numpy()
    weights = np.linalg.solve(x.T @ x + 10.0 * np.eye(len(names)), x.T @ y)
    test = test.with_columns(pred=pl.Series(test.select(names).to_numpy() @ weights))
    daily = test.group_by("datetime").agg(ic=pl.corr("pred", LABEL))
    return float(daily.get_column("ic").mean())


def test_planted_signal_gives_a_small_positive_out_of_sample_ic() -> None:
    ic = _out_of_sample_ic(SimulationConfig(**SIGNAL_MARKET))
    assert 0.02 <= ic <= 0.08, ic
    # Without the planted signal the same model finds nothing.
    null_ic = _out_of_sample_ic(SimulationConfig(**SIGNAL_MARKET, signal_strength=0.0))
    assert abs(null_ic) < 0.02, null_ic
    assert ic > null_ic + 0.02


def test_label_is_not_leaked_by_same_day_fields(small_market_store) -> None:
    bars = small_market_store.read(list(SIMULATED_FIELDS), "all")
    c = pl.col("close")
    frame = bars.with_columns(
        (c.shift(-2) / c.shift(-1) - 1).over("instrument").alias(LABEL),
        (pl.col("open") / c).alias("open_r"),
        (pl.col("high") / c).alias("high_r"),
        (pl.col("low") / c).alias("low_r"),
        (pl.col("vwap") / c).alias("vwap_r"),
    ).drop_nulls()
    for name in ("open_r", "high_r", "low_r", "vwap_r", "change", "volume", "amount", "factor"):
        daily = frame.group_by("datetime").agg(
            ic=pl.corr(pl.col(name).rank(), pl.col(LABEL).rank())
        )
        assert abs(daily.get_column("ic").fill_nan(None).mean()) < 0.05, name


def test_same_config_same_market_and_seed_matters() -> None:
    config = SimulationConfig(n_instruments=8, start="2020-01-01", end="2020-06-30", seed=5)
    first, second = simulate_market(config), simulate_market(config)
    assert first.bars.equals(second.bars)
    assert first.universes.equals(second.universes)
    other = simulate_market(SimulationConfig(**{**config.to_dict(), "seed": 6}))
    assert not first.bars.equals(other.bars)
    assert config.digest() != SimulationConfig(**{**config.to_dict(), "seed": 6}).digest()


def test_bars_are_consistent(small_market_store) -> None:
    bars = small_market_store.read(list(SIMULATED_FIELDS), "all")
    traded = bars.drop_nulls("close")
    # A traded day has every value; change is missing only on the listing day.
    assert traded.drop("change").select(pl.all().null_count()).sum_horizontal().item() == 0
    no_change = traded.filter(pl.col("change").is_null())
    first_days = bars.group_by("instrument").agg(pl.col("datetime").min())
    assert (
        no_change.select("instrument", "datetime")
        .sort("instrument")
        .equals(first_days.sort("instrument"))
    )
    checks = traded.select(
        (pl.col("low") <= pl.col("open")).all().alias("low<=open"),
        (pl.col("low") <= pl.col("close")).all().alias("low<=close"),
        (pl.col("open") <= pl.col("high")).all().alias("open<=high"),
        (pl.col("close") <= pl.col("high")).all().alias("close<=high"),
        ((pl.col("vwap") >= pl.col("low")) & (pl.col("vwap") <= pl.col("high")))
        .all()
        .alias("vwap"),
        (pl.col("volume") > 0).all().alias("volume>0"),
        (pl.col("factor") > 0).all().alias("factor>0"),
        (pl.col("change").abs() <= 0.1 + 1e-6).all().alias("limit"),
    )
    assert all(checks.row(0)), checks
    # change is the close-to-close change since the last traded day.
    prev = pl.col("close").shift(1).over("instrument")
    moved = traded.with_columns((pl.col("close") / prev - 1).alias("pct")).drop_nulls()
    assert moved.select((pl.col("pct") - pl.col("change")).abs().max()).item() < 1e-4
    # Some days hit the price limit; the adjustment factor changes for some stocks.
    assert traded.filter(pl.col("change").abs() > 0.0999).height > 0
    assert traded.group_by("instrument").agg(pl.col("factor").n_unique() > 1).sum().item(0, 1) > 0


def test_returns_have_fat_tails_and_volatility_clustering() -> None:
    market = simulate_market(
        SimulationConfig(n_instruments=60, start="2016-01-01", end="2019-12-31")
    )
    returns = (
        market.bars.filter(pl.col("instrument") != "SH000300")
        .with_columns(r=(pl.col("close") / pl.col("close").shift(1) - 1).over("instrument"))
        .drop_nulls("r")
        .filter(pl.col("r").abs() < 0.0999)  # leave out limit days
    )
    r = returns.get_column("r").to_numpy().astype(float)
    kurtosis = np.mean((r - r.mean()) ** 4) / np.var(r) ** 2
    assert kurtosis > 4.0, kurtosis
    absolute = (
        returns.with_columns(a=pl.col("r").abs())
        .with_columns(lag=pl.col("a").shift(1).over("instrument"))
        .drop_nulls()
    )
    autocorr = np.corrcoef(absolute.get_column("a"), absolute.get_column("lag"))[0, 1]
    assert autocorr > 0.05, autocorr


def test_invalid_configs_are_rejected() -> None:
    with pytest.raises(ConfigError, match="n_instruments must be >= 2"):
        SimulationConfig(n_instruments=1)
    with pytest.raises(ConfigError, match="universe 'all' is implicit"):
        SimulationConfig(universes={"all": 3})
    with pytest.raises(ConfigError, match="start '2021-01-01' must be before end"):
        SimulationConfig(start="2021-01-01", end="2020-01-01")
    with pytest.raises(ConfigError, match="at least a quarter of a year"):
        simulate_market(SimulationConfig(start="2021-01-01", end="2021-02-01"))
