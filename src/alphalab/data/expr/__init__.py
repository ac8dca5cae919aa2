"""The feature expression language (Qlib syntax) compiled to Polars.

Public names:

- :func:`parse`: expression string -> frozen AST (:class:`Field`, :class:`Const`, :class:`Call`).
- :class:`ExpressionSet`: parse, check and plan several expressions; ``required_fields``,
  ``lookback``, ``lookahead``, ``evaluate(frame)``.
- :func:`compute_features`: one-call form of ``ExpressionSet(...).evaluate(frame)``.
- :func:`alpha158` / :func:`alpha360`: the (expressions, names) of Qlib's two handlers.
- :data:`OPERATORS`: the operator table.
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
