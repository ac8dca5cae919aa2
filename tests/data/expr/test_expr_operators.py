"""Every operator against a straightforward pandas/numpy implementation.

The frame has several instruments of different lengths, NaN gaps, ties and flat stretches; the
oracle loops per instrument with pandas (where the spec says "as pandas") or plain numpy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphalab.data.expr import compute_features

Oracle = Callable[[pd.DataFrame], pd.Series]


def _make_frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for k, length in enumerate((70, 45, 90, 3, 60)):
        a = 50 + np.cumsum(rng.normal(0, 1, length))
        b = rng.lognormal(3, 1, length)
        c = rng.integers(0, 4, length).astype(float)  # many ties
        flat = np.repeat(rng.normal(10, 1, (length + 9) // 10), 10)[:length]  # flat stretches
        neg = rng.normal(0, 1, length)  # signs change, zeros of Log/Div
        neg[rng.random(length) < 0.05] = 0.0
        for col in (a, b, c, flat, neg):
            col[rng.random(length) < 0.15] = np.nan
        if length > 20:
            a[10:14] = np.nan  # a gap longer than the small windows
        parts.append(
            pd.DataFrame(
                {
                    "datetime": pd.date_range("2020-01-01", periods=length, freq="D")
                    + pd.Timedelta(days=5 * k),
                    "instrument": f"S{k}",
                    "a": a,
                    "b": b,
                    "c": c,
                    "flat": flat,
                    "neg": neg,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def market() -> pd.DataFrame:
    return _make_frame(20261123)


def _ours(market: pd.DataFrame, expression: str, *, shuffle: bool = False) -> np.ndarray:
    frame = pl.from_pandas(market)
    if shuffle:
        frame = frame.sample(fraction=1.0, shuffle=True, seed=7)
    out = compute_features(frame, [expression], ["f"])
    # the output is sorted by (instrument, datetime), as the market frame is
    return out.get_column("f").cast(pl.Float64).fill_null(np.nan).to_numpy()


def _per_instrument(market: pd.DataFrame, fn: Oracle) -> np.ndarray:
    pieces = [fn(g.reset_index(drop=True)) for _, g in market.groupby("instrument", sort=True)]
    return np.concatenate([np.asarray(p, dtype=float) for p in pieces])


def _check(
    market: pd.DataFrame, expression: str, fn: Oracle, *, nonempty: bool = True, **tol: float
) -> None:
    expected = _per_instrument(market, fn)
    got = _ours(market, expression)
    np.testing.assert_allclose(
        got, expected, rtol=tol.get("rtol", 1e-7), atol=tol.get("atol", 1e-9), equal_nan=True
    )
    if nonempty:
        assert not np.all(np.isnan(expected)), "the oracle should not be all-missing"


def _rolling(s: pd.Series, n: int) -> pd.api.typing.Rolling | pd.api.typing.Expanding:
    return s.expanding(min_periods=1) if n == 0 else s.rolling(n, min_periods=1)


def _windows(s: pd.Series, n: int) -> list[np.ndarray]:
    v = s.to_numpy(dtype=float)
    return [v[(0 if n == 0 else max(0, t - n + 1)) : t + 1] for t in range(len(v))]


# -- rolling statistics "as pandas" ---------------------------------------------------------
PANDAS_ROLLING = ["mean", "sum", "std", "var", "max", "min", "median", "skew", "kurt", "count"]
NAMES = {"median": "Med", "kurt": "Kurt", "skew": "Skew", "count": "Count"}


@pytest.mark.parametrize("n", [1, 2, 5, 20, 0])
@pytest.mark.parametrize("method", PANDAS_ROLLING)
def test_rolling_statistics_match_pandas(market: pd.DataFrame, method: str, n: int) -> None:
    op = NAMES.get(method, method.capitalize())
    too_few = {"std": 2, "var": 2, "skew": 3, "kurt": 4}.get(method, 1)
    for field in ("a", "c"):
        _check(
            market,
            f"{op}(${field}, {n})",
            lambda g, field=field: getattr(_rolling(g[field], n), method)(),
            nonempty=n == 0 or n >= too_few,
        )


@pytest.mark.parametrize("n", [1, 3, 10, 0])
@pytest.mark.parametrize("q", [0.0, 0.2, 0.5, 0.8, 1.0])
def test_quantile_is_linear_as_pandas(market: pd.DataFrame, n: int, q: float) -> None:
    _check(market, f"Quantile($a, {n}, {q})", lambda g: _rolling(g["a"], n).quantile(q))
    _check(market, f"Quantile($c, {n}, {q})", lambda g: _rolling(g["c"], n).quantile(q))


@pytest.mark.parametrize("n", [1, 3, 10, 0])
def test_rank_is_pandas_rolling_rank_pct(market: pd.DataFrame, n: int) -> None:
    for field in ("a", "c"):
        _check(
            market,
            f"Rank(${field}, {n})",
            lambda g, field=field: _rolling(g[field], n).rank(pct=True),
        )


# -- shifts ----------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 3, -1, -2, 0])
def test_ref_shifts_past_and_future(market: pd.DataFrame, n: int) -> None:
    def oracle(g: pd.DataFrame) -> pd.Series:
        s = g["a"]
        return pd.Series(s.iloc[0], index=s.index) if n == 0 else s.shift(n)

    _check(market, f"Ref($a, {n})", oracle)


@pytest.mark.parametrize("n", [1, 5, 0])
def test_delta(market: pd.DataFrame, n: int) -> None:
    _check(
        market,
        f"Delta($a, {n})",
        lambda g: g["a"] - (g["a"].iloc[0] if n == 0 else g["a"].shift(n)),
    )


# -- positional and regression operators ------------------------------------------------------
def _idx(fn: Callable[[np.ndarray], int], s: pd.Series, n: int) -> list[float]:
    return [np.nan if np.isnan(w).all() else float(fn(w) + 1) for w in _windows(s, n)]


@pytest.mark.parametrize("n", [1, 4, 10, 0])
def test_idxmax_idxmin_are_one_based_first_occurrence(market: pd.DataFrame, n: int) -> None:
    for field in ("a", "c"):
        _check(
            market, f"IdxMax(${field}, {n})", lambda g, field=field: _idx(np.nanargmax, g[field], n)
        )
        _check(
            market, f"IdxMin(${field}, {n})", lambda g, field=field: _idx(np.nanargmin, g[field], n)
        )


def _ols(w: np.ndarray) -> tuple[float, float, float] | None:
    """(slope, intercept, r2) of the present values of w on 1..n, None below 2 values."""
    y = w[~np.isnan(w)]
    if len(y) < 2:
        return None
    x = np.arange(1, len(y) + 1, dtype=float)
    xm, ym = x.mean(), y.mean()
    slope = float(((x - xm) * (y - ym)).sum() / ((x - xm) ** 2).sum())
    intercept = ym - slope * xm
    sst = ((y - ym) ** 2).sum()
    r2 = np.nan if sst == 0 else float(1 - ((y - intercept - slope * x) ** 2).sum() / sst)
    return slope, intercept, r2


def _slope(g: pd.DataFrame, f: str, n: int) -> list[float]:
    return [np.nan if (r := _ols(w)) is None else r[0] for w in _windows(g[f], n)]


def _rsquare(g: pd.DataFrame, f: str, n: int) -> pd.Series:
    r2 = pd.Series([np.nan if (r := _ols(w)) is None else r[2] for w in _windows(g[f], n)])
    std = _rolling(g[f], n).std()
    return r2.mask(std.abs() <= 2e-5)


def _resi(g: pd.DataFrame, f: str, n: int) -> list[float]:
    out = []
    for w in _windows(g[f], n):
        r = _ols(w)
        if r is None or np.isnan(w[-1]):
            out.append(np.nan)
        else:
            count = int((~np.isnan(w)).sum())
            out.append(w[-1] - (r[1] + r[0] * count))
    return out


@pytest.mark.parametrize("n", [2, 5, 20, 0])
def test_slope_rsquare_resi_are_ols_on_1_to_n(market: pd.DataFrame, n: int) -> None:
    for f in ("a", "flat"):
        _check(market, f"Slope(${f}, {n})", lambda g, f=f: _slope(g, f, n), atol=1e-8)
        _check(market, f"Rsquare(${f}, {n})", lambda g, f=f: _rsquare(g, f, n), atol=1e-7)
        _check(market, f"Resi(${f}, {n})", lambda g, f=f: _resi(g, f, n), atol=1e-7)


@pytest.mark.parametrize("n", [2, 5, 20, 0])
def test_corr_and_cov_as_pandas_with_zero_variance_nan(market: pd.DataFrame, n: int) -> None:
    def corr(x: str, y: str) -> Oracle:
        def oracle(g: pd.DataFrame) -> pd.Series:
            res = _rolling(g[x], n).corr(g[y])
            small = (_rolling(g[x], n).std().abs() <= 2e-5) | (_rolling(g[y], n).std() <= 2e-5)
            return res.mask(small)

        return oracle

    for x, y in (("a", "b"), ("flat", "a"), ("c", "neg")):
        _check(market, f"Corr(${x}, ${y}, {n})", corr(x, y), atol=1e-7)
        _check(
            market,
            f"Cov(${x}, ${y}, {n})",
            lambda g, x=x, y=y: _rolling(g[x], n).cov(g[y]),
            atol=1e-7,
        )


@pytest.mark.parametrize("n", [1, 3, 10])
def test_wma_is_linearly_weighted_over_present_values(market: pd.DataFrame, n: int) -> None:
    def oracle(g: pd.DataFrame) -> list[float]:
        out = []
        for w in _windows(g["a"], n):
            weights = np.arange(1, len(w) + 1, dtype=float)
            ok = ~np.isnan(w)
            out.append(np.nan if not ok.any() else (weights[ok] * w[ok]).sum() / weights[ok].sum())
        return out

    _check(market, f"WMA($a, {n})", oracle)


@pytest.mark.parametrize("n", ["1", "3", "10", "0.3"])
def test_ema_is_pandas_ewm(market: pd.DataFrame, n: str) -> None:
    def oracle(g: pd.DataFrame) -> pd.Series:
        if "." in n:
            return g["a"].ewm(alpha=float(n), min_periods=1).mean()
        return g["a"].ewm(span=int(n), min_periods=1).mean()

    _check(market, f"EMA($a, {n})", oracle)


# -- elementwise ----------------------------------------------------------------------------
def _nan_where_missing(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def wrapped(*xs: np.ndarray) -> np.ndarray:
        out = fn(*xs).astype(float)
        out[np.any([np.isnan(x) for x in xs], axis=0)] = np.nan
        return out

    return wrapped


ELEMENTWISE: list[tuple[str, Callable[[pd.DataFrame], np.ndarray]]] = [
    ("$a + $b * 2 - $neg / $c", lambda d: d.a + d.b * 2 - d.neg / d.c),
    ("-$a + -3", lambda d: -d.a - 3),
    ("$a > $b", lambda d: _nan_where_missing(np.greater)(d.a, d.b)),
    ("$c >= 2", lambda d: _nan_where_missing(np.greater_equal)(d.c, np.full(len(d), 2.0))),
    ("$c < $flat", lambda d: _nan_where_missing(np.less)(d.c, d.flat)),
    ("$c <= 1", lambda d: _nan_where_missing(np.less_equal)(d.c, np.ones(len(d)))),
    ("$c == 1", lambda d: _nan_where_missing(np.equal)(d.c, np.ones(len(d)))),
    ("Ne($c, 1)", lambda d: _nan_where_missing(np.not_equal)(d.c, np.ones(len(d)))),
    (
        "($c > 1) & ($a > 50)",
        lambda d: _nan_where_missing(lambda x, y: (x > 1) & (y > 50))(d.c, d.a),
    ),
    (
        "($c > 1) | ($a > 50)",
        lambda d: _nan_where_missing(lambda x, y: (x > 1) | (y > 50))(d.c, d.a),
    ),
    ("Not($c)", lambda d: _nan_where_missing(lambda x: x == 0)(d.c)),
    ("Abs($neg)", lambda d: np.abs(d.neg)),
    ("Sign($neg)", lambda d: np.sign(d.neg)),
    ("Log($neg)", lambda d: np.log(d.neg.where(d.neg != 0, 0.0).to_numpy())),
    ("Power($b, 0.5)", lambda d: np.power(d.b, 0.5)),
    ("Power($neg, 0.5)", lambda d: np.power(d.neg.to_numpy(), 0.5)),
    ("Greater($a, $flat)", lambda d: np.maximum(d.a, d.flat)),
    ("Less($a, 50)", lambda d: np.minimum(d.a, 50)),
    (
        "If($c > 1, $a, $b)",
        lambda d: np.where(d.c.isna(), np.nan, np.where(d.c > 1, d.a, d.b)),
    ),
    ("$neg / 0", lambda d: d.neg.to_numpy() / 0.0),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize(("expression", "oracle"), ELEMENTWISE, ids=[e for e, _ in ELEMENTWISE])
def test_elementwise_operators(
    market: pd.DataFrame, expression: str, oracle: Callable[[pd.DataFrame], np.ndarray]
) -> None:
    with np.errstate(all="ignore"):
        expected = np.asarray(oracle(market), dtype=float)
    np.testing.assert_allclose(_ours(market, expression), expected, rtol=1e-12, equal_nan=True)


def test_nan_produced_inside_is_skipped_by_rolling_windows(market: pd.DataFrame) -> None:
    # Log of negatives gives NaN in pandas, which rolling windows skip; so must we.
    with np.errstate(all="ignore"):
        logged = market.assign(x=np.log(market["neg"].to_numpy()))
    _check(logged, "Mean(Log($neg), 5)", lambda g: g["x"].rolling(5, min_periods=1).mean())
    _check(logged, "Max(Log($neg), 5)", lambda g: g["x"].rolling(5, min_periods=1).max())


def test_greater_propagates_missing_like_numpy_maximum(market: pd.DataFrame) -> None:
    got = _ours(market, "Greater($a, 0)")
    assert np.array_equal(np.isnan(got), market["a"].isna().to_numpy())


# -- cross-sectional ------------------------------------------------------------------------
def test_cross_sectional_rank_and_zscore(market: pd.DataFrame) -> None:
    by_date = market.groupby("datetime")["a"]
    rank = by_date.rank(pct=True).to_numpy()
    z = ((market["a"] - by_date.transform("mean")) / by_date.transform("std")).to_numpy()
    np.testing.assert_allclose(_ours(market, "CSRank($a)"), rank, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(_ours(market, "CSZScore($a)"), z, rtol=1e-9, equal_nan=True)


def test_mask_reads_another_instrument_on_the_same_date(market: pd.DataFrame) -> None:
    s2 = market[market.instrument == "S2"].set_index("datetime")["a"]
    expected = market["datetime"].map(s2).to_numpy(dtype=float)
    np.testing.assert_allclose(_ours(market, "Mask($a, 'S2')"), expected, equal_nan=True)


def test_unsorted_input_gives_the_same_result(market: pd.DataFrame) -> None:
    expression = "Corr($a, $b, 5) + Mean($a, 3) - Ref($b, -1) + CSRank($a)"
    np.testing.assert_allclose(
        _ours(market, expression, shuffle=True), _ours(market, expression), equal_nan=True
    )


# -- property: random lengths, NaN patterns and windows, two instruments ------------------------
@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.none(), st.floats(-1e3, 1e3, allow_nan=False).map(lambda v: round(v, 2))),
        min_size=1,
        max_size=40,
    ),
    split=st.integers(0, 40),
    n=st.integers(0, 12),
    method=st.sampled_from(["mean", "sum", "std", "max", "min", "median", "count"]),
)
def test_rolling_matches_pandas_on_random_series(
    values: list[float | None], split: int, n: int, method: str
) -> None:
    x = np.array([np.nan if v is None else v for v in values], dtype=float)
    split = min(split, len(x))
    market = pd.DataFrame(
        {
            "datetime": list(range(split)) + list(range(len(x) - split)),
            "instrument": ["A"] * split + ["B"] * (len(x) - split),
            "x": x,
        }
    )
    op = NAMES.get(method, method.capitalize())
    expected = _per_instrument(market, lambda g: getattr(_rolling(g["x"], n), method)())
    got = _ours(market, f"{op}($x, {n})")
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-6, equal_nan=True)
