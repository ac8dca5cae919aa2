"""Tokenizer and recursive-descent parser of Qlib's expression syntax.

Precedence follows Python's, which Qlib's expressions inherit (lowest first): comparisons
(``> >= < <= == !=``, not chained), ``|``, ``&``, ``+ -``, ``* /``, unary ``- +``. Operator calls
are ``Name(x, ..., N)`` where the trailing literal parameters (windows, quantiles) are
literals, checked against :data:`~alphalab.data.expr._operators.OPERATORS`.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Collection
from dataclasses import dataclass

from alphalab.data.expr._ast import Call, Const, Field, Node, Param
from alphalab.data.expr._operators import BINARY_OPERATORS, OPERATORS, OpSpec, ParamKind
from alphalab.exceptions import ExpressionError


class Tok(enum.Enum):
    """Token kinds."""

    NUMBER = "number"
    FIELD = "field"
    NAME = "name"
    STRING = "string"
    OP = "operator"
    END = "end of expression"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, source text and 0-based start position."""

    kind: Tok
    text: str
    pos: int


_PUNCTUATION = ("==", "!=", ">=", "<=", ">", "<", "+", "-", "*", "/", "&", "|", "(", ")", ",")


def _is_name_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens, ending with an END token.

    Raises:
        ExpressionError: On a character that starts no token or a malformed number or string.
    """
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c.isspace():
            i += 1
        elif c.isdigit() or (c == "." and i + 1 < n and source[i + 1].isdigit()):
            start = i
            while i < n and (source[i].isdigit() or source[i] == "."):
                i += 1
            if i < n and source[i] in "eE":
                j = i + 1
                if j < n and source[j] in "+-":
                    j += 1
                if j < n and source[j].isdigit():
                    i = j
                    while i < n and source[i].isdigit():
                        i += 1
            text = source[start:i]
            if text.count(".") > 1 or (i < n and _is_name_char(source[i])):
                raise ExpressionError("malformed number", source, start)
            tokens.append(Token(Tok.NUMBER, text, start))
        elif c == "$":
            start = i
            i += 1
            while i < n and _is_name_char(source[i]):
                i += 1
            if i == start + 1:
                raise ExpressionError("expected a field name after '$'", source, start)
            tokens.append(Token(Tok.FIELD, source[start + 1 : i], start))
        elif c.isalpha() or c == "_":
            start = i
            while i < n and _is_name_char(source[i]):
                i += 1
            tokens.append(Token(Tok.NAME, source[start:i], start))
        elif c in "'\"":
            start = i
            end = source.find(c, i + 1)
            if end < 0:
                raise ExpressionError("unterminated string", source, start)
            tokens.append(Token(Tok.STRING, source[start + 1 : end], start))
            i = end + 1
        else:
            for p in _PUNCTUATION:
                if source.startswith(p, i):
                    tokens.append(Token(Tok.OP, p, i))
                    i += len(p)
                    break
            else:
                raise ExpressionError(f"unexpected character {c!r}", source, i)
    tokens.append(Token(Tok.END, "", n))
    return tokens


_COMPARISONS = frozenset({">", ">=", "<", "<=", "==", "!="})


class _Parser:
    def __init__(self, source: str, fields: Collection[str] | None):
        self.source = source
        self.fields = fields
        self.tokens = tokenize(source)
        self.i = 0

    # -- token helpers -------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, message: str, pos: int | None = None) -> ExpressionError:
        return ExpressionError(message, self.source, self.tok.pos if pos is None else pos)

    def at_end(self) -> bool:
        return self.tok.kind is Tok.END

    def at_op(self, *texts: str) -> bool:
        return self.tok.kind is Tok.OP and self.tok.text in texts

    def expect_op(self, text: str, context: str) -> Token:
        if not self.at_op(text):
            raise self.error(f"expected {text!r} {context}, found {self._describe(self.tok)}")
        tok = self.tok
        self.i += 1
        return tok

    @staticmethod
    def _describe(tok: Token) -> str:
        return "the end of the expression" if tok.kind is Tok.END else repr(tok.text)

    # -- grammar -------------------------------------------------------------------------
    def parse(self) -> Node:
        if self.at_end():
            raise self.error("empty expression")
        node = self.comparison()
        if not self.at_end():
            raise self.error(f"unexpected {self._describe(self.tok)} after a complete expression")
        return node

    def comparison(self) -> Node:
        left = self.binary_level(0)
        if self.tok.kind is Tok.OP and self.tok.text in _COMPARISONS:
            op = self.tok
            self.i += 1
            right = self.binary_level(0)
            if self.tok.kind is Tok.OP and self.tok.text in _COMPARISONS:
                raise self.error("chained comparisons are not supported; use parentheses")
            return Call(BINARY_OPERATORS[op.text], (left, right), (), op.pos)
        return left

    _LEVELS: tuple[tuple[str, ...], ...] = (("|",), ("&",), ("+", "-"), ("*", "/"))

    def binary_level(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        ops = self._LEVELS[level]
        left = self.binary_level(level + 1)
        while self.at_op(*ops):
            op = self.tok
            self.i += 1
            right = self.binary_level(level + 1)
            left = Call(BINARY_OPERATORS[op.text], (left, right), (), op.pos)
        return left

    def unary(self) -> Node:
        if self.at_op("-", "+"):
            op = self.tok
            self.i += 1
            operand = self.unary()
            if op.text == "+":
                return operand
            if isinstance(operand, Const):
                return Const(-operand.value)
            return Call("_Neg", (operand,), (), op.pos)
        return self.primary()

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind is Tok.NUMBER:
            self.i += 1
            return Const(float(tok.text))
        if tok.kind is Tok.FIELD:
            self.i += 1
            if self.fields is not None and tok.text not in self.fields:
                raise self.error(unknown_field_message(tok.text, self.fields), tok.pos)
            return Field(tok.text, tok.pos)
        if tok.kind is Tok.NAME:
            return self.call()
        if self.at_op("("):
            self.i += 1
            node = self.comparison()
            self.expect_op(")", "to close the parenthesis")
            return node
        if tok.kind is Tok.STRING:
            raise self.error("a string can only be the instrument argument of Mask")
        raise self.error(f"expected a value, found {self._describe(tok)}")

    def call(self) -> Node:
        name = self.tok
        spec = OPERATORS.get(name.text)
        if spec is None:
            close = difflib.get_close_matches(name.text, list(OPERATORS), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise self.error(f"unknown operator {name.text!r}{hint}", name.pos)
        self.i += 1
        self.expect_op("(", f"after the operator name {name.text!r}")
        args: list[Node] = []
        params: list[Param] = []
        for k in range(spec.arity):
            if self.at_op(")"):
                raise self.error(self._arity_message(spec, k))
            if k > 0:
                self.expect_op(",", f"between the arguments of {spec.name}")
                if self.at_op(")"):
                    raise self.error(self._arity_message(spec, k))
            if k < spec.n_series:
                args.append(self.comparison())
            else:
                params.append(self.literal(spec, spec.params[k - spec.n_series]))
        if self.at_op(","):
            raise self.error(self._arity_message(spec, None))
        self.expect_op(")", f"to close the call of {spec.name}")
        return Call(spec.name, tuple(args), tuple(params), name.pos)

    @staticmethod
    def _arity_message(spec: OpSpec, given: int | None) -> str:
        got = "more" if given is None else str(given)
        return f"{spec.name} takes {spec.arity} arguments, {spec.signature()}; got {got}"

    def literal(self, spec: OpSpec, kind: ParamKind) -> Param:
        start = self.tok
        what = f"the {'instrument' if kind is ParamKind.INSTRUMENT else 'parameter'}"
        message = f"{what} of {spec.signature()} must be {kind.value}"
        if kind is ParamKind.INSTRUMENT:
            if start.kind is not Tok.STRING:
                raise self.error(message)
            self.i += 1
            return start.text
        sign = 1
        if self.at_op("-", "+"):
            sign = -1 if self.tok.text == "-" else 1
            self.i += 1
        tok = self.tok
        if tok.kind is not Tok.NUMBER or not (self.at_end_of_argument(1)):
            raise self.error(message, start.pos)
        self.i += 1
        is_int = tok.text.isdigit()
        value = float(tok.text) * sign
        if kind is ParamKind.QUANTILE:
            if not 0.0 <= value <= 1.0:
                raise self.error(message, start.pos)
            return value
        if kind is ParamKind.SPAN and not is_int:
            if not 0.0 < value < 1.0:
                raise self.error(message, start.pos)
            return value
        if not is_int:
            raise self.error(message, start.pos)
        number = int(tok.text) * sign
        minimum = {ParamKind.WINDOW: 0, ParamKind.POSITIVE_WINDOW: 1, ParamKind.SPAN: 1}
        if kind in minimum and number < minimum[kind]:
            raise self.error(message, start.pos)
        return number

    def at_end_of_argument(self, ahead: int) -> bool:
        nxt = self.tokens[self.i + ahead]
        return nxt.kind is Tok.END or (nxt.kind is Tok.OP and nxt.text in (",", ")"))


def unknown_field_message(name: str, fields: Collection[str]) -> str:
    """``unknown field '$x'; available fields: ...`` with close matches first."""
    available = ", ".join(f"${f}" for f in sorted(fields)) or "none"
    close = difflib.get_close_matches(name, list(fields), n=1)
    hint = f"; did you mean ${close[0]}?" if close else ""
    return f"unknown field ${name}{hint} (available fields: {available})"


def parse(source: str, fields: Collection[str] | None = None) -> Node:
    """Parse one expression into its AST.

    Args:
        source: The expression, e.g. ``"Mean($close, 5) / $close"``.
        fields: The field names (without ``$``) the expression may use; None accepts any.

    Raises:
        ExpressionError: On a syntax error, an unknown operator or field, a wrong number of
            arguments or a parameter that is not a literal of the right kind. The error names
            the expression and the 0-based position of the problem.
    """
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be a string; got {type(source).__name__}")
    return _Parser(source, fields).parse()
