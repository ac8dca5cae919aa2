"""Frozen AST nodes of the feature expression language.

Nodes compare and hash by value (the source position is carried for error messages but ignored
by ``==``), so identical sub-expressions of different expressions are equal and can be shared.
Operator names that start with ``_`` are internal: the parser never produces them, the lowering
pass (:mod:`alphalab.data.expr._lower`) does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

Param = int | float | str


@dataclass(frozen=True, slots=True)
class Field:
    """A column of the market data, written ``$name`` in an expression."""

    name: str
    pos: int = field(default=-1, compare=False)

    def __str__(self) -> str:
        return f"${self.name}"


@dataclass(frozen=True, slots=True)
class Const:
    """A numeric literal."""

    value: float

    def __str__(self) -> str:
        return repr(self.value)


@dataclass(frozen=True, slots=True)
class Call:
    """An operator applied to series arguments and literal parameters (windows, quantiles...).

    Binary operators are calls too: ``$a + $b`` is ``Call("Add", ($a, $b))``.
    """

    op: str
    args: tuple[Node, ...]
    params: tuple[Param, ...] = ()
    pos: int = field(default=-1, compare=False)

    def __str__(self) -> str:
        parts = [str(a) for a in self.args] + [repr(p) for p in self.params]
        return f"{self.op}({', '.join(parts)})"


Node = Field | Const | Call


def walk(node: Node) -> Iterator[Node]:
    """Yield ``node`` and every node below it, parents before children (with repeats)."""
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, Call):
            stack.extend(reversed(current.args))


def fields_of(node: Node) -> list[Field]:
    """The field nodes of ``node`` in source order (with repeats)."""
    return [n for n in walk(node) if isinstance(n, Field)]
