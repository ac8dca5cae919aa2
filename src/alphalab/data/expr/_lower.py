"""Lowering: rewrite composite operators into the primitives the Polars compiler knows.

``Slope``, ``Rsquare``, ``Resi``, ``Corr``, ``Cov``, ``WMA``, ``Rank``, ``Count``, ``Delta``,
``IdxMax`` and ``IdxMin`` become small graphs of rolling sums/means and elementwise arithmetic.
Because AST nodes compare by value, the pieces those graphs have in common (the rolling count of
``$close``, its rolling sum, ``Std($close, 20)`` used by ``Rsquare``/``Corr`` and by a plain
``Std`` feature...) are shared by the common sub-expression pass afterwards.

Internal primitives (never written by users) start with ``_``:

- ``_Neg(x)``: -x.
- ``_Valid(x)``: 1 where x is present, 0 where it is missing (never missing).
- ``_CumSum(x)``: cumulative sum per instrument.
- ``_ShiftZero(x)[N]``: x shifted by N rows per instrument, 0 before the first row.
- ``_Pos()``: 0-based row number per instrument.
- ``_MaskBy(x, y)``: x where y is present, missing where y is missing.
- ``_Finite(x)``: x with ±inf turned into missing (pandas' windows skip inf as they skip NaN;
  every window operator reads its inputs through it).
- ``_NullIfSmall(s, x)[tol]``: missing where |s| <= tol, else x.
- ``_NullIfBelow(n, x)[k]``: missing where n < k, else x.
- ``_RollRank(x)[N]``: rolling rank (average ties) of the current value among present ones.
- ``_ArgKey(x)[sign]``: an integer key ordering rows by ``sign * x`` then by earliest row.
- ``_IdxFromKey(key, pos)[N]``: 1-based position in the window of the row holding the rolling
  maximum of ``key``.
"""

from __future__ import annotations

from collections.abc import Callable

from alphalab.data.expr._ast import Call, Const, Node, Param
from alphalab.data.expr._operators import OPERATORS, Extent

# The absolute tolerance under which a rolling standard deviation counts as zero.
ZERO_STD_TOL = 2e-5


def _c(op: str, *args: Node, params: tuple[Param, ...] = ()) -> Call:
    return Call(op, tuple(args), params)


def _k(value: float) -> Const:
    return Const(float(value))


def lower(node: Node) -> Node:
    """Return ``node`` rewritten into primitives (children first)."""
    if not isinstance(node, Call):
        return node
    args = tuple(lower(a) for a in node.args)
    op, params = node.op, node.params
    spec = OPERATORS.get(op)
    if spec is not None and spec.extent in (Extent.WINDOW, Extent.UNBOUNDED):
        args = tuple(_c("_Finite", a) for a in args)
    rule = _RULES.get(op)
    if rule is not None:
        return rule(args, params)
    return Call(op, args, params)


def _count(x: Node, n: int) -> Node:
    return _c("Sum", _c("_Valid", x), params=(n,))


def _rank(args: tuple[Node, ...], params: tuple[Param, ...]) -> Node:
    (x,), (n,) = args, params
    return _c("Div", _c("_RollRank", x, params=(n,)), _count(x, int(n)))


def _delta(args: tuple[Node, ...], params: tuple[Param, ...]) -> Node:
    (x,), (n,) = args, params
    return _c("Sub", x, _c("Ref", x, params=(n,)))


Rule = Callable[[tuple[Node, ...], tuple[Param, ...]], Node]


def _idx(sign: int) -> Rule:
    def rule(args: tuple[Node, ...], params: tuple[Param, ...]) -> Node:
        (x,), (n,) = args, params
        key = _c("_ArgKey", x, params=(sign,))
        return _c("_IdxFromKey", key, _c("_Pos"), params=(n,))

    return rule


class _Ols:
    """The pieces of the rolling regression of x on 1..n over the present values."""

    def __init__(self, x: Node, n: int):
        self.x = x
        valid = _c("_Valid", x)
        self.n = _c("Sum", valid, params=(n,))
        # x-coordinate of a present value = present values up to it since the window start
        cum = _c("_CumSum", valid)
        base: Node = _k(0) if n == 0 else _c("_ShiftZero", cum, params=(n,))
        self.sy = _c("Sum", x, params=(n,))
        scy = _c("Sum", _c("Mul", cum, x), params=(n,))
        sxy = _c("Sub", scy, _c("Mul", base, self.sy))
        sx = _c("Div", _c("Mul", self.n, _c("Add", self.n, _k(1))), _k(2))
        # n * sum(i^2) - (sum i)^2 = n^2 (n^2 - 1) / 12
        nn = _c("Mul", self.n, self.n)
        den_x = _c("Div", _c("Mul", nn, _c("Sub", nn, _k(1))), _k(12))
        self.den_x = _c("_NullIfBelow", self.n, den_x, params=(2,))
        self.num = _c("Sub", _c("Mul", self.n, sxy), _c("Mul", sx, self.sy))
        self.slope = _c("Div", self.num, self.den_x)
        self.window = n

    def rsquare(self) -> Node:
        syy = _c("Sum", _c("Mul", self.x, self.x), params=(self.window,))
        den_y = _c("Sub", _c("Mul", self.n, syy), _c("Mul", self.sy, self.sy))
        r2 = _c("Div", _c("Mul", self.num, self.num), _c("Mul", self.den_x, den_y))
        std = _c("Std", self.x, params=(self.window,))
        return _c("_NullIfSmall", std, r2, params=(ZERO_STD_TOL,))

    def resi(self) -> Node:
        mean = _c("Div", self.sy, self.n)
        # last point's x-coordinate n minus the mean coordinate (n + 1) / 2
        dx = _c("Div", _c("Sub", self.n, _k(1)), _k(2))
        return _c("Sub", self.x, _c("Add", mean, _c("Mul", self.slope, dx)))


def _slope(args: tuple[Node, ...], params: tuple[Param, ...]) -> Node:
    return _Ols(args[0], int(params[0])).slope


def _rsquare(args: tuple[Node, ...], params: tuple[Param, ...]) -> Node:
    return _Ols(args[0], int(params[0])).rsquare()


def _resi(args: tuple[Node, ...], params: tuple[Param, ...]) -> Node:
    return _Ols(args[0], int(params[0])).resi()


def _cov_parts(x: Node, y: Node, n: int) -> tuple[Node, Node, Node]:
    """Pairwise-complete X, Y and their covariance (ddof=1), as pandas computes it."""
    xm = _c("_MaskBy", x, y)
    ym = _c("_MaskBy", y, x)
    count = _count(xm, n)
    mxy = _c("Mean", _c("Mul", xm, ym), params=(n,))
    mx = _c("Mean", xm, params=(n,))
    my = _c("Mean", ym, params=(n,))
    factor = _c("Div", count, _c("Sub", count, _k(1)))
    factor = _c("_NullIfBelow", count, factor, params=(2,))  # ddof = 1
    cov = _c("Mul", _c("Sub", mxy, _c("Mul", mx, my)), factor)
    return xm, ym, cov


def _cov(args: tuple[Node, ...], params: tuple[Param, ...]) -> Node:
    return _cov_parts(args[0], args[1], int(params[0]))[2]


def _corr(args: tuple[Node, ...], params: tuple[Param, ...]) -> Node:
    x, y = args
    n = int(params[0])
    xm, ym, cov = _cov_parts(x, y, n)
    var = _c("Mul", _c("Var", xm, params=(n,)), _c("Var", ym, params=(n,)))
    corr: Node = _c("Div", cov, _c("Power", var, _k(0.5)))
    # a window whose paired values do not vary: 0/0 in pandas, NaN
    corr = _c("_NullIfSmall", var, corr, params=(0.0,))
    for side in (y, x):
        std = _c("Std", side, params=(n,))
        corr = _c("_NullIfSmall", std, corr, params=(ZERO_STD_TOL,))
    return corr


def _wma(args: tuple[Node, ...], params: tuple[Param, ...]) -> Node:
    (x,), (n,) = args, params
    pos = _c("_Pos")
    valid = _c("_Valid", x)
    # weight of row s in the window of row t: pos_s - (pos_t - L) with L = min(N, pos_t + 1)
    length = _c("Less", _c("Add", pos, _k(1)), _k(int(n)))
    offset = _c("Sub", pos, length)

    def weighted(v: Node) -> Node:
        total = _c("Sum", _c("Mul", pos, v), params=(n,))
        return _c("Sub", total, _c("Mul", offset, _c("Sum", v, params=(n,))))

    return _c("Div", weighted(x), weighted(valid))


def _count_rule(args: tuple[Node, ...], params: tuple[Param, ...]) -> Node:
    return _count(args[0], int(params[0]))


_RULES: dict[str, Rule] = {
    "Rank": _rank,
    "Delta": _delta,
    "IdxMax": _idx(1),
    "IdxMin": _idx(-1),
    "Slope": _slope,
    "Rsquare": _rsquare,
    "Resi": _resi,
    "Cov": _cov,
    "Corr": _corr,
    "WMA": _wma,
    "Count": _count_rule,
}

__all__ = ["ZERO_STD_TOL", "lower"]
