"""Compiled sets of feature expressions: parse once, evaluate on long frames."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence

import polars as pl

from alphalab.data.expr._ast import Node, fields_of
from alphalab.data.expr._lower import lower
from alphalab.data.expr._operators import combine_extents
from alphalab.data.expr._parser import parse, unknown_field_message
from alphalab.data.expr._polars import (
    DATETIME,
    INSTRUMENT,
    Plan,
    iter_plan,
    make_plan,
)
from alphalab.exceptions import ExpressionError


class ExpressionSet:
    """Feature expressions parsed and planned together, ready to evaluate on a long frame.

    Args:
        expressions: Expression strings in Qlib's syntax, e.g. ``"Mean($close, 5)/$close"``.
        names: The output column of each expression; defaults to the expressions themselves.
        fields: The field names (without ``$``) available; None checks them at evaluation.
        share: Compute sub-expressions common to several expressions once (default). False
            evaluates every expression on its own (for measuring what sharing saves).

    Raises:
        ExpressionError: When an expression is invalid (syntax, unknown operator or field,
            arity, literal parameters), or the names do not match the expressions.

    Example:
        >>> es = ExpressionSet(["Mean($close, 5)/$close", "Ref($close, -2)"], ["MA5", "F2"])
        >>> es.required_fields, es.lookback, es.lookahead
        (('close',), 4, 2)
    """

    def __init__(
        self,
        expressions: Sequence[str],
        names: Sequence[str] | None = None,
        *,
        fields: Collection[str] | None = None,
        share: bool = True,
    ):
        if isinstance(expressions, str):
            raise ExpressionError("expressions must be a sequence of strings, not one string")
        self.expressions: tuple[str, ...] = tuple(expressions)
        self.names: tuple[str, ...] = self.expressions if names is None else tuple(names)
        if len(self.names) != len(self.expressions):
            raise ExpressionError(
                f"got {len(self.names)} names for {len(self.expressions)} expressions"
            )
        seen: set[str] = set()
        for name in self.names:
            if name in seen or name in (DATETIME, INSTRUMENT):
                raise ExpressionError(f"duplicate or reserved output name {name!r}")
            seen.add(name)
        self.share = share
        self.nodes: tuple[Node, ...] = tuple(parse(e, fields) for e in self.expressions)
        self.lookback, self.lookahead = combine_extents(list(self.nodes))
        self._plan: Plan | None = None

    @property
    def required_fields(self) -> tuple[str, ...]:
        """The fields the expressions read, sorted, without ``$``."""
        return tuple(sorted({f.name for node in self.nodes for f in fields_of(node)}))

    @property
    def plan(self) -> Plan:
        """The evaluation plan (built on first use)."""
        if self._plan is None:
            self._plan = make_plan([lower(n) for n in self.nodes], share=self.share)
        return self._plan

    def check_fields(self, available: Collection[str]) -> None:
        """Raise ExpressionError naming the first expression that reads a missing field."""
        for source, node in zip(self.expressions, self.nodes, strict=True):
            for f in fields_of(node):
                if f.name not in available:
                    message = unknown_field_message(f.name, available)
                    raise ExpressionError(message, source, f.pos)

    def evaluate(
        self,
        frame: pl.DataFrame,
        *,
        progress: Callable[[int, int], None] | None = None,
        dtype: type[pl.Float32] | type[pl.Float64] = pl.Float64,
    ) -> pl.DataFrame:
        """Compute every expression on ``frame``.

        Args:
            frame: A long frame with columns ``datetime``, ``instrument`` and the required
                fields (named without ``$``), one row per (instrument, datetime). Missing
                values may be NaN or null. It should be sorted by (instrument, datetime);
                it is sorted here when it is not.
            progress: Called as ``progress(done, total)`` while the outputs are computed (a
                few times, after each batch of the plan), e.g. to drive a progress bar.
            dtype: Type of the output columns. Computation is always in float64; with
                ``pl.Float32`` each output is narrowed as soon as it is computed, which halves
                the memory the outputs hold.

        Returns:
            ``datetime, instrument, *names``, sorted by (instrument, datetime); the features
            are ``dtype`` (Float64 by default) with null for every missing value (never NaN;
            ±inf where the expression divides by zero).

        Raises:
            ExpressionError: When a field an expression reads is not a column of ``frame``.
            DataError: On duplicate (instrument, datetime) rows.
        """
        pieces = self.evaluate_pieces(frame, progress=progress, dtype=dtype)
        return pl.concat(list(pieces), rechunk=False)

    def evaluate_pieces(
        self,
        frame: pl.DataFrame,
        *,
        progress: Callable[[int, int], None] | None = None,
        dtype: type[pl.Float32] | type[pl.Float64] = pl.Float64,
    ) -> Iterator[pl.DataFrame]:
        """:meth:`evaluate`'s result in pieces of whole instruments, computed as they are used.

        Concatenated, the pieces are what :meth:`evaluate` returns; a caller that writes each
        piece away holds the features of one piece at a time, not all of them.
        """
        self._check_frame(frame)
        return iter_plan(self.plan, frame, self.required_fields, self.names, progress, dtype)

    def _check_frame(self, frame: pl.DataFrame) -> None:
        for column in (DATETIME, INSTRUMENT):
            if column not in frame.columns:
                raise ExpressionError(f"the frame has no {column!r} column")
        available = [c for c in frame.columns if c not in (DATETIME, INSTRUMENT)]
        self.check_fields(available)

    def __repr__(self) -> str:
        return f"ExpressionSet({len(self.expressions)} expressions, fields={self.required_fields})"


def compute_features(
    frame: pl.DataFrame,
    expressions: Sequence[str],
    names: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Evaluate ``expressions`` on ``frame``; see :meth:`ExpressionSet.evaluate`."""
    return ExpressionSet(expressions, names).evaluate(frame)


def lookback(expressions: Sequence[str]) -> int | None:
    """Rows of history before a date that ``expressions`` need (None: the whole history)."""
    return ExpressionSet(expressions).lookback


def lookahead(expressions: Sequence[str]) -> int:
    """Rows after a date that ``expressions`` read (``Ref(x, -N)``)."""
    return ExpressionSet(expressions).lookahead
