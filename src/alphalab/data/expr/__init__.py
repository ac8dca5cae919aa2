"""The feature expression language (Qlib syntax) compiled to Polars.

Public names:

- :func:`parse`: expression string -> frozen AST (:class:`Field`, :class:`Const`, :class:`Call`).
- :class:`ExpressionSet`: parse, check and plan several expressions; ``required_fields``,
  ``lookback``, ``lookahead``, ``evaluate(frame)``.
- :func:`compute_features`: one-call form of ``ExpressionSet(...).evaluate(frame)``.
- :func:`alpha158` / :func:`alpha360`: the (expressions, names) of Qlib's two handlers.
- :data:`OPERATORS`: the operator table.

Frames: the input is a long Polars frame with ``datetime``, ``instrument`` and one column per
field, named without ``$`` (``close``, ``volume``...), one row per (instrument, datetime),
preferably sorted by (instrument, datetime). Missing values may be NaN or null. The output is
``datetime, instrument, *names`` sorted the same way, Float64, with null for every missing value
(never NaN; ±inf where an expression divides by zero); ``to_pandas()`` turns the nulls into NaN.

History: ``ExpressionSet.lookback`` rows before the first wanted date (None: the whole history)
and ``lookahead`` rows after the last make the values equal to those over the full data.
"""

from alphalab.data.expr._alpha import alpha158, alpha360
from alphalab.data.expr._ast import Call, Const, Field, Node
from alphalab.data.expr._engine import ExpressionSet, compute_features, lookahead, lookback
from alphalab.data.expr._operators import OPERATORS, OpSpec, ParamKind
from alphalab.data.expr._parser import parse, tokenize

__all__ = [
    "OPERATORS",
    "Call",
    "Const",
    "ExpressionSet",
    "Field",
    "Node",
    "OpSpec",
    "ParamKind",
    "alpha158",
    "alpha360",
    "compute_features",
    "lookahead",
    "lookback",
    "parse",
    "tokenize",
]
