from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from alphalab.data.expr import ExpressionSet, alpha158, alpha360, compute_features
from alphalab.data.expr import lookahead as lookahead_of
from alphalab.data.expr import lookback as lookback_of
from alphalab.exceptions import DataError, ExpressionError

# The spec folder sits beside the repository (<repo>/../shared/spec); a worktree may sit one
# level deeper, so look upwards for it.
SPEC = next(
    (
        p / "shared" / "spec"
        for p in Path(__file__).resolve().parents
        if (p / "shared" / "spec").is_dir()
    ),
    Path(__file__).resolve().parents[4] / "shared" / "spec",
)


def _market(n_instruments: int, n_days: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_instruments * n_days
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, (n_instruments, n_days)), axis=1)).ravel()
    open_ = close * (1 + rng.normal(0, 0.01, n))
    volume = rng.lognormal(10, 1, n)
    close[rng.random(n) < 0.05] = np.nan  # suspended days
    return pl.DataFrame(
        {
            "datetime": np.tile(np.arange(n_days), n_instruments),
            "instrument": np.repeat([f"S{i:03d}" for i in range(n_instruments)], n_days),
            "open": open_,
            "high": np.fmax(open_, close) * 1.01,
            "low": np.fmin(open_, close) * 0.99,
            "close": close,
            "vwap": (open_ + close) / 2,
            "volume": volume,
        }
    )


@pytest.mark.parametrize(("name", "make"), [("alpha158", alpha158), ("alpha360", alpha360)])
def test_alpha_lists_match_the_spec_tables(name: str, make: object) -> None:
    table = SPEC / f"{name}.tsv"
    if not table.exists():
        pytest.skip(f"{table} is absent: the spec folder sits beside the repository (CI has it)")
    rows = [line.split("\t") for line in table.read_text().splitlines()[1:] if line]
    expressions, names = make()  # type: ignore[operator]
    assert names == [r[0] for r in rows]
    assert expressions == [r[1] for r in rows]


def test_alpha_lists_have_the_qlib_sizes_and_parse() -> None:
    e158, n158 = alpha158()
    e360, n360 = alpha360()
    assert (len(e158), len(set(n158)), len(e360), len(set(n360))) == (158, 158, 360, 360)
    assert n158[:3] == ["KMID", "KLEN", "KMID2"] and n158[-1] == "VSUMD60"
    assert n360[0] == "CLOSE59" and n360[-1] == "VOLUME0"
    es = ExpressionSet(e158 + e360, [f"a158_{n}" for n in n158] + [f"a360_{n}" for n in n360])
    assert es.required_fields == ("close", "high", "low", "open", "volume", "vwap")
    assert (es.lookback, es.lookahead) == (60, 0)


@pytest.mark.parametrize(
    ("expression", "back", "ahead"),
    [
        ("$close", 0, 0),
        ("Ref($close, 5)", 5, 0),
        ("Mean($close, 5)", 4, 0),
        ("Mean(Ref($close, 3), 5) / Std($open, 20)", 19, 0),
        ("Ref($close, -2)/Ref($close, -1) - 1", 0, 2),
        ("Corr($close/Ref($close,1), Log($volume/Ref($volume, 1)+1), 60)", 60, 0),
        ("Mean($close, 0)", None, 0),
        ("Ref($close, 0)", None, 0),
        ("EMA($close, 10)", None, 0),
        ("Mean(Ref($close, -3), 10)", 9, 3),
    ],
)
def test_lookback_and_lookahead(expression: str, back: int | None, ahead: int) -> None:
    assert lookback_of([expression]) == back
    assert lookahead_of([expression]) == ahead


def test_values_from_start_equal_full_history_given_the_lookback() -> None:
    frame = _market(5, 200, 1)
    expressions, names = alpha158()
    es = ExpressionSet(expressions, names)
    full = es.evaluate(frame).filter(pl.col("datetime") >= 120)
    assert es.lookback is not None
    part = es.evaluate(frame.filter(pl.col("datetime") >= 120 - es.lookback))
    part = part.filter(pl.col("datetime") >= 120)

    def close(a: pl.DataFrame, b: pl.DataFrame) -> bool:
        x, y = (f.select(names).to_numpy().astype(float) for f in (a, b))
        return bool(np.allclose(x, y, rtol=1e-8, atol=1e-10, equal_nan=True))

    assert close(part, full)  # equal up to rounding (rolling sums start elsewhere)
    # one day of history less changes a 60-day feature somewhere
    short = es.evaluate(frame.filter(pl.col("datetime") >= 121 - es.lookback))
    assert not close(short.filter(pl.col("datetime") >= 120), full)


def test_sharing_gives_the_same_values_and_fewer_nodes() -> None:
    frame = _market(4, 150, 2)
    expressions, names = alpha158()
    shared = ExpressionSet(expressions, names)
    alone = ExpressionSet(expressions, names, share=False)
    assert shared.evaluate(frame).equals(alone.evaluate(frame), null_equal=True)
    assert shared.plan.n_shared > 50
    assert shared.plan.n_nodes < shared.plan.n_references / 2
    assert alone.plan.n_shared == 0


def test_output_schema_and_missing_value_convention() -> None:
    frame = _market(3, 80, 3).with_columns(pl.col("volume").cast(pl.Float32))
    out = compute_features(
        frame, ["$close / $open", "Mean($close, 3)", "Log($open - $open)"], ["a", "b", "c"]
    )
    assert out.columns == ["datetime", "instrument", "a", "b", "c"]
    assert out.schema["a"] == pl.Float64
    # NaN in the input becomes null, never NaN in the output; log(0) stays -inf
    assert out.select(pl.col("a", "b").is_nan().any()).row(0) == (False, False)
    assert out.get_column("a").null_count() == frame.get_column("close").is_nan().sum()
    assert math.isinf(out.get_column("c")[0])


def test_evaluation_errors() -> None:
    frame = _market(2, 10, 4)
    with pytest.raises(ExpressionError, match=r"unknown field \$amount.*position 5"):
        compute_features(frame, ["Mean($amount, 5)"], ["x"])
    with pytest.raises(ExpressionError, match="the frame has no 'instrument' column"):
        compute_features(frame.drop("instrument"), ["$close"], ["x"])
    doubled = pl.concat([frame, frame.head(1)])
    with pytest.raises(DataError, match="several rows for the same"):
        compute_features(doubled, ["$close"], ["x"])


def test_a_requested_expression_may_repeat_under_two_names() -> None:
    frame = _market(2, 30, 5)
    out = compute_features(frame, ["Std($close, 5)", "Std($close, 5)"], ["x", "y"])
    assert out.get_column("x").equals(out.get_column("y"))


def test_progress_reports_every_output_once() -> None:
    frame = _market(2, 40, 6)
    expressions, names = alpha158()
    seen: list[tuple[int, int]] = []
    ExpressionSet(expressions, names).evaluate(frame, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (158, 158)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) > 2


def test_groups_of_instruments_evaluate_to_the_same_values(monkeypatch) -> None:
    from alphalab.data.expr import _polars

    frame = _market(7, 130, 7)
    expressions, names = alpha158()
    expressions = [*expressions, "Mean($close, 0)", "CSRank($close)"]
    names = [*names, "EXPANDING", "CSR"]
    whole = ExpressionSet(expressions, names).evaluate(frame)
    monkeypatch.setattr(_polars, "CHUNK_ROWS", 300)  # about 3 instruments a group
    seen: list[tuple[int, int]] = []
    per_instrument = ExpressionSet(expressions[:-1], names[:-1]).evaluate(
        frame, progress=lambda d, t: seen.append((d, t))
    )
    assert per_instrument.equals(whole.drop("CSR"), null_equal=True)
    assert seen[-1][0] == seen[-1][1] == 3 * 159  # three groups of instruments
    # A cross-sectional operator needs every instrument of a date at once: no groups.
    seen.clear()
    again = ExpressionSet(expressions, names).evaluate(
        frame, progress=lambda d, t: seen.append((d, t))
    )
    assert again.equals(whole, null_equal=True) and seen[-1] == (160, 160)
