"""The operator table: every operator a user may call, its arguments and its time extent.

Each operator takes ``n_series`` series arguments (expressions) followed by literal parameters
whose kinds are listed in ``params``. ``extent`` says how the operator reaches into the past or
the future, which :func:`extent` turns into the look-back/look-ahead of a whole expression.

Semantics (``../shared/spec/expressions.md``): missing values are skipped inside windows as
pandas skips NaN (and ±inf, which pandas' windows also treat as missing), with min_periods=1;
a window of N = 0 is expanding. Elementwise operators give missing where an operand is missing
(``Greater``/``Less`` like ``np.maximum``/``np.minimum``; comparisons too, rather than False).
Where the spec's words and Qlib 0.9's implementation part ways, the spec is followed:

- ``Slope``/``Rsquare``/``Resi`` regress the window's present values on 1..n; Qlib's Cython
  uses their row positions, which differs only when a missing value sits inside the window.
- ``WMA`` is sum(w x) / sum(w) over the present values with weights 1..L (oldest first); Qlib
  takes ``np.nanmean(w * x)`` of normalised weights, which also divides by the window length.
- ``IdxMax``/``IdxMin`` skip missing values; ``np.argmax`` in Qlib returns a NaN's position.
- ``If``/``And``/``Or``/``Not`` treat a nonzero value as true and give missing for a missing
  operand (Qlib's numpy calls would treat NaN as true).
- ``EMA`` and expanding windows depend on the whole history: their look-back is None.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from alphalab.data.expr._ast import Const, Field, Node


class ParamKind(enum.Enum):
    """The kind of a literal parameter."""

    SHIFT = "an integer literal (positive: past, negative: future)"
    WINDOW = "an integer literal >= 0 (0 means expanding)"
    POSITIVE_WINDOW = "an integer literal >= 1"
    QUANTILE = "a number literal in [0, 1]"
    SPAN = "an integer literal >= 1 (span) or a number literal in (0, 1) (alpha)"
    INSTRUMENT = "a quoted instrument name"


class Extent(enum.Enum):
    """How an operator's output at time t depends on its inputs' times."""

    ELEMENTWISE = "elementwise"  # same row only
    CROSS_SECTION = "cross_section"  # same date, other instruments
    SHIFT = "shift"  # row t - N (N = first parameter; N = 0: the first row of the series)
    WINDOW = "window"  # rows t - N + 1 .. t (N = first parameter; N = 0: whole history)
    UNBOUNDED = "unbounded"  # the whole history before t (exponential decay)


@dataclass(frozen=True, slots=True)
class OpSpec:
    """One operator of the language."""

    name: str
    n_series: int
    params: tuple[ParamKind, ...]
    extent: Extent
    doc: str

    @property
    def arity(self) -> int:
        """The total number of arguments, series and literals."""
        return self.n_series + len(self.params)

    def signature(self) -> str:
        """``Name(x, y, N)`` as shown in error messages."""
        series = ["cond", "x", "y"] if self.n_series == 3 else ["x", "y"][: self.n_series]
        names = {
            ParamKind.SHIFT: "N",
            ParamKind.WINDOW: "N",
            ParamKind.POSITIVE_WINDOW: "N",
            ParamKind.QUANTILE: "q",
            ParamKind.SPAN: "N",
            ParamKind.INSTRUMENT: "instrument",
        }
        return f"{self.name}({', '.join(series + [names[p] for p in self.params])})"


def _ops(*specs: OpSpec) -> dict[str, OpSpec]:
    return {s.name: s for s in specs}


_E, _W = Extent.ELEMENTWISE, Extent.WINDOW
_WIN = (ParamKind.WINDOW,)

OPERATORS: dict[str, OpSpec] = _ops(
    # elementwise, one argument
    OpSpec("Abs", 1, (), _E, "absolute value"),
    OpSpec("Sign", 1, (), _E, "sign: -1, 0 or 1"),
    OpSpec("Log", 1, (), _E, "natural logarithm (missing for x < 0, -inf for 0)"),
    OpSpec("Not", 1, (), _E, "1 where x == 0, else 0"),
    # elementwise, two arguments (the binary operators are these too)
    OpSpec("Add", 2, (), _E, "x + y"),
    OpSpec("Sub", 2, (), _E, "x - y"),
    OpSpec("Mul", 2, (), _E, "x * y"),
    OpSpec("Div", 2, (), _E, "x / y"),
    OpSpec("Greater", 2, (), _E, "elementwise maximum"),
    OpSpec("Less", 2, (), _E, "elementwise minimum"),
    OpSpec("Power", 2, (), _E, "x ** y"),
    OpSpec("Gt", 2, (), _E, "1 where x > y else 0"),
    OpSpec("Ge", 2, (), _E, "1 where x >= y else 0"),
    OpSpec("Lt", 2, (), _E, "1 where x < y else 0"),
    OpSpec("Le", 2, (), _E, "1 where x <= y else 0"),
    OpSpec("Eq", 2, (), _E, "1 where x == y else 0"),
    OpSpec("Ne", 2, (), _E, "1 where x != y else 0"),
    OpSpec("And", 2, (), _E, "1 where x != 0 and y != 0 else 0"),
    OpSpec("Or", 2, (), _E, "1 where x != 0 or y != 0 else 0"),
    OpSpec("If", 3, (), _E, "x where cond != 0, y where cond == 0"),
    OpSpec(
        "Mask",
        1,
        (ParamKind.INSTRUMENT,),
        Extent.CROSS_SECTION,
        "x of the named instrument on the same date",
    ),
    # along time, per instrument
    OpSpec("Ref", 1, (ParamKind.SHIFT,), Extent.SHIFT, "x shifted by N rows"),
    OpSpec("Delta", 1, _WIN, Extent.SHIFT, "x - Ref(x, N)"),
    OpSpec("Mean", 1, _WIN, _W, "rolling mean"),
    OpSpec("Sum", 1, _WIN, _W, "rolling sum"),
    OpSpec("Std", 1, _WIN, _W, "rolling standard deviation (ddof=1)"),
    OpSpec("Var", 1, _WIN, _W, "rolling variance (ddof=1)"),
    OpSpec("Max", 1, _WIN, _W, "rolling maximum"),
    OpSpec("Min", 1, _WIN, _W, "rolling minimum"),
    OpSpec("Med", 1, _WIN, _W, "rolling median"),
    OpSpec("Skew", 1, _WIN, _W, "rolling skewness (unbiased, >= 3 values)"),
    OpSpec("Kurt", 1, _WIN, _W, "rolling excess kurtosis (unbiased, >= 4 values)"),
    OpSpec("Count", 1, _WIN, _W, "rolling count of non-missing values"),
    OpSpec("Rank", 1, _WIN, _W, "rolling percentile rank of the current value"),
    OpSpec("IdxMax", 1, _WIN, _W, "1-based position of the window's maximum"),
    OpSpec("IdxMin", 1, _WIN, _W, "1-based position of the window's minimum"),
    OpSpec("Slope", 1, _WIN, _W, "rolling OLS slope on 1..n"),
    OpSpec("Rsquare", 1, _WIN, _W, "rolling OLS R-squared on 1..n"),
    OpSpec("Resi", 1, _WIN, _W, "rolling OLS residual of the last point"),
    OpSpec(
        "Quantile",
        1,
        (ParamKind.WINDOW, ParamKind.QUANTILE),
        _W,
        "rolling quantile (linear interpolation)",
    ),
    OpSpec("WMA", 1, (ParamKind.POSITIVE_WINDOW,), _W, "linearly weighted moving average"),
    OpSpec("EMA", 1, (ParamKind.SPAN,), Extent.UNBOUNDED, "exponential moving average"),
    OpSpec("Corr", 2, _WIN, _W, "rolling Pearson correlation"),
    OpSpec("Cov", 2, _WIN, _W, "rolling covariance (ddof=1)"),
    # across instruments, per date
    OpSpec("CSRank", 1, (), Extent.CROSS_SECTION, "percentile rank among the date's instruments"),
    OpSpec("CSZScore", 1, (), Extent.CROSS_SECTION, "z-score among the date's instruments"),
)

BINARY_OPERATORS: dict[str, str] = {
    "+": "Add",
    "-": "Sub",
    "*": "Mul",
    "/": "Div",
    ">": "Gt",
    ">=": "Ge",
    "<": "Lt",
    "<=": "Le",
    "==": "Eq",
    "!=": "Ne",
    "&": "And",
    "|": "Or",
}


def extent(node: Node) -> tuple[int | None, int]:
    """Rows of history and of future that ``node`` reads around each row.

    Returns:
        ``(lookback, lookahead)``: ``lookback`` is None when the value depends on the whole
        history (an expanding window, ``Ref(x, 0)``, ``EMA``). Nested windows add up, so the
        figures are safe upper bounds.
    """
    if isinstance(node, Field | Const):
        return 0, 0
    parts = [extent(a) for a in node.args]
    back: int | None = 0
    ahead = 0
    for b, a in parts:
        back = None if back is None or b is None else max(back, b)
        ahead = max(ahead, a)
    spec = OPERATORS.get(node.op)
    kind = spec.extent if spec is not None else Extent.ELEMENTWISE
    if kind is Extent.UNBOUNDED:
        return None, ahead
    if kind in (Extent.SHIFT, Extent.WINDOW):
        n = int(node.params[0])  # an int: the parser checks it
        if n == 0:
            return None, ahead
        if n < 0:
            return back, ahead - n
        step = n if kind is Extent.SHIFT else n - 1
        return (None if back is None else back + step), ahead
    return back, ahead


def combine_extents(nodes: list[Node]) -> tuple[int | None, int]:
    """The look-back and look-ahead of a set of expressions (the largest of each)."""
    back: int | None = 0
    ahead = 0
    for node in nodes:
        b, a = extent(node)
        back = None if back is None or b is None else max(back, b)
        ahead = max(ahead, a)
    return back, ahead
