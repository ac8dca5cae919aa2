"""Risk analysis of a return series and the summary of trade indicators, as Qlib defines them."""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import pandas as pd

from alphalab.exceptions import ConfigError, DataError

# Periods per year used to annualise, by the unit of the analysis frequency (Qlib's scalers).
_FREQ_SCALER = {"minute": 240 * 238, "day": 238, "week": 50, "month": 12}
_FREQ_ALIASES = {
    "min": "minute",
    "minute": "minute",
    "d": "day",
    "day": "day",
    "w": "week",
    "week": "week",
    "m": "month",
    "mon": "month",
    "month": "month",
}
_FREQ_RE = re.compile(r"^\s*(\d*)\s*([a-zA-Z]+)\s*$")

RISK_METRICS = ("mean", "std", "annualized_return", "information_ratio", "max_drawdown")


def parse_freq(freq: str) -> tuple[int, str]:
    """Split a frequency such as ``"day"``, ``"1day"``, ``"5min"`` or ``"week"`` into (count, unit).

    Raises:
        ConfigError: The text is not a frequency alphalab knows.
    """
    match = _FREQ_RE.match(freq) if isinstance(freq, str) else None
    unit = _FREQ_ALIASES.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise ConfigError(
            f"Unknown analysis frequency {freq!r}; use an optional count followed by one of "
            f"{sorted(set(_FREQ_ALIASES))}, e.g. 'day', '1day', 'week', 'month'"
        )
    count = int(match.group(1)) if match.group(1) else 1
    if count <= 0:
        raise ConfigError(f"The count in the analysis frequency {freq!r} must be positive")
    return count, unit


def annualization_scaler(freq: str) -> float:
    """Periods per year for ``freq``: 238 for a day, 50 for a week, 12 for a month (per count)."""
    count, unit = parse_freq(freq)
    return _FREQ_SCALER[unit] / count


def risk_analysis(
    r: pd.Series,
    N: float | None = None,
    freq: str | None = "day",
    mode: Literal["sum", "product"] = "sum",
) -> pd.DataFrame:
    """Summarise a series of period returns the way Qlib does.

    ``mode="sum"`` accumulates returns by addition: ``mean`` and ``std`` (ddof=1) of ``r``,
    ``annualized_return = mean * N``, ``max_drawdown = min(cumsum - cummax(cumsum))``.
    ``mode="product"`` compounds: ``mean`` is the geometric mean return per period, ``std`` the
    sample std of ``log(1 + r)``, ``annualized_return = prod(1 + r) ** (N / len(r)) - 1`` and
    ``max_drawdown = min(curve / cummax(curve) - 1)`` on the compounded curve. In both modes
    ``information_ratio = mean / std * sqrt(N)``.

    Args:
        r: Returns per period (e.g. daily excess returns), indexed by date. NaN values are
            ignored.
        N: Periods per year. When given it wins over ``freq``.
        freq: Frequency of ``r`` used to derive ``N``: day 238, week 50, month 12.
        mode: ``"sum"`` (Qlib's default) or ``"product"``.

    Returns:
        A DataFrame with one column ``risk`` indexed by ``mean, std, annualized_return,
        information_ratio, max_drawdown``.

    Raises:
        ConfigError: Neither ``N`` nor ``freq`` is given, or ``mode`` is unknown.
        DataError: ``r`` holds no value.
    """
    if N is None:
        if freq is None:
            raise ConfigError("risk_analysis needs N (periods per year) or freq (e.g. 'day')")
        N = annualization_scaler(freq)
    if N <= 0:
        raise ConfigError(f"risk_analysis: N (periods per year) must be positive; got {N}")
    series = pd.Series(r, dtype="float64").dropna()
    if series.empty:
        raise DataError("risk_analysis got an empty return series; nothing to analyse")
    if mode == "sum":
        mean = float(series.mean())
        std = float(series.std(ddof=1))
        annualized_return = mean * N
        cumulative = series.cumsum()
        max_drawdown = float((cumulative - cumulative.cummax()).min())
    elif mode == "product":
        curve = (1.0 + series).cumprod()
        final = float(curve.iloc[-1])
        mean = final ** (1.0 / len(series)) - 1.0
        std = float(np.log1p(series).std(ddof=1))
        annualized_return = final ** (N / len(series)) - 1.0
        max_drawdown = float((curve / curve.cummax() - 1.0).min())
    else:
        raise ConfigError(f"risk_analysis mode must be 'sum' or 'product'; got {mode!r}")
    information_ratio = mean / std * np.sqrt(N) if std > 0 else float("nan")
    values = [mean, std, annualized_return, information_ratio, max_drawdown]
    return pd.DataFrame({"risk": values}, index=pd.Index(RISK_METRICS))


def indicator_analysis(indicators: pd.DataFrame, method: str = "mean") -> pd.DataFrame:
    """Summarise daily trade indicators over the whole backtest.

    ``ffr`` and ``pa`` are averaged with weights chosen by ``method``: ``"mean"`` weights each
    day by its number of orders (``count``), ``"amount_weighted"`` by the traded amount
    (``deal_amount``), ``"value_weighted"`` by the traded value (``value``). ``pos`` is always
    weighted by the number of orders. Days without orders carry no weight.

    Returns:
        A DataFrame with one column ``value`` indexed by ``ffr, pa, pos``.

    Raises:
        ConfigError: ``method`` is unknown.
        DataError: A column that the method needs is missing.
    """
    weight_column = {"mean": "count", "amount_weighted": "deal_amount", "value_weighted": "value"}
    if method not in weight_column:
        raise ConfigError(
            f"indicator_analysis method must be one of {sorted(weight_column)}; got {method!r}"
        )
    needed = {"ffr", "pa", "pos", "count", weight_column[method]}
    missing = sorted(needed - set(indicators.columns))
    if missing:
        raise DataError(f"indicator_analysis needs the indicator columns {missing}")

    def weighted(column: str, weights: pd.Series) -> float:
        values = indicators[column]
        valid = values.notna() & (weights > 0)
        total = float(weights[valid].sum())
        return float((values[valid] * weights[valid]).sum() / total) if total > 0 else float("nan")

    weights = indicators[weight_column[method]].abs().astype("float64")
    counts = indicators["count"].astype("float64")
    result = {
        "ffr": weighted("ffr", weights),
        "pa": weighted("pa", weights),
        "pos": weighted("pos", counts),
    }
    return pd.Series(result).to_frame("value")
