from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphalab.data.expr import Call, Const, ExpressionSet, Field, parse, tokenize
from alphalab.exceptions import ExpressionError


def test_parses_to_frozen_nodes_with_python_precedence() -> None:
    node = parse("$a + 2 * $b > Mean($c, 5) & $d")
    # comparison binds loosest, then &, then +, then *
    assert node == Call(
        "Gt",
        (
            Call("Add", (Field("a"), Call("Mul", (Const(2.0), Field("b"))))),
            Call("And", (Call("Mean", (Field("c"),), (5,)), Field("d"))),
        ),
    )
    with pytest.raises(AttributeError, match="cannot assign"):
        node.op = "Lt"  # type: ignore[misc]


def test_equal_subexpressions_are_equal_and_hash_alike() -> None:
    a = parse("Mean($close, 5)/$close")
    b = parse("  Mean( $close ,5 ) / $close")
    assert a == b and hash(a) == hash(b)
    assert a != parse("Mean($close, 10)/$close")


def test_literals_and_unary_minus() -> None:
    assert parse("-2") == Const(-2.0)
    assert parse("1e-12") == Const(1e-12)
    assert parse("--$a") == Call("_Neg", (Call("_Neg", (Field("a"),)),))
    assert parse("Ref($close, -2)") == Call("Ref", (Field("close"),), (-2,))
    assert parse("EMA($a, 0.5)").params == (0.5,)  # type: ignore[union-attr]
    assert parse("Quantile($a, 10, 0.8)").params == (10, 0.8)  # type: ignore[union-attr]
    assert parse("Mask($a, 'SH600000')").params == ("SH600000",)  # type: ignore[union-attr]


def test_tokens_carry_positions() -> None:
    assert [(t.text, t.pos) for t in tokenize("Ref($close,1)>=2")][:6] == [
        ("Ref", 0),
        ("(", 3),
        ("close", 4),
        (",", 10),
        ("1", 11),
        (")", 12),
    ]


@pytest.mark.parametrize(
    ("expression", "message", "position"),
    [
        ("Mean($close, 5", r"expected '\)' to close the call of Mean", 14),
        ("$close +", "expected a value, found the end of the expression", 8),
        ("($close", r"expected '\)' to close the parenthesis", 7),
        ("$close # 2", "unexpected character '#'", 7),
        ("$close $open", r"unexpected '\$open'|unexpected 'open'", 7),
        ("Foo($close, 5)", "unknown operator 'Foo'", 0),
        ("Meen($close, 5)", "did you mean Mean", 0),
        ("Mean($close)", r"Mean takes 2 arguments, Mean\(x, N\); got 1", 11),
        ("Mean($close, 5, 3)", r"Mean takes 2 arguments.*got more", 14),
        ("Corr($a, 5)", r"Corr takes 3 arguments", 10),
        ("Mean($close, 2.5)", r"parameter of Mean\(x, N\) must be an integer literal >= 0", 13),
        ("Mean($close, $open)", "must be an integer literal", 13),
        ("Mean($close, -1)", "must be an integer literal >= 0", 13),
        ("Ref($close, 1.0)", "must be an integer literal", 12),
        ("Quantile($a, 5, 1.5)", r"must be a number literal in \[0, 1\]", 16),
        ("EMA($a, 1.5)", "span", 8),
        ("WMA($a, 0)", "integer literal >= 1", 8),
        ("$a > $b > $c", "chained comparisons", 8),
        ("", "empty expression", 0),
        ("$", "expected a field name", 0),
        ("1.2.3", "malformed number", 0),
        ("Mask($a, SH600000)", "must be a quoted instrument name", 9),
        ("'x'", "a string can only be", 0),
    ],
)
def test_syntax_errors_name_expression_and_position(
    expression: str, message: str, position: int
) -> None:
    with pytest.raises(ExpressionError, match=message) as info:
        parse(expression)
    assert info.value.expression == expression
    assert info.value.position == position
    if expression:  # the message quotes a non-empty expression with a caret under the position
        assert f"at position {position}" in str(info.value)


def test_unknown_field_given_the_available_fields() -> None:
    with pytest.raises(ExpressionError, match=r"unknown field \$clse; did you mean \$close") as e:
        parse("Mean($clse, 5)", fields=["close", "open"])
    assert e.value.position == 5
    with pytest.raises(ExpressionError, match=r"unknown field \$vwap.*in expression 'Ref"):
        ExpressionSet(["$close", "Ref($vwap, 1)"], fields={"close"})


def test_expression_set_checks_names() -> None:
    with pytest.raises(ExpressionError, match="got 1 names for 2 expressions"):
        ExpressionSet(["$a", "$b"], ["x"])
    with pytest.raises(ExpressionError, match="duplicate or reserved output name 'x'"):
        ExpressionSet(["$a", "$b"], ["x", "x"])
    with pytest.raises(ExpressionError, match="not one string"):
        ExpressionSet("$a")


# Random well-formed expressions: printing the AST with Qlib's call syntax parses back to it.
_leaf = st.one_of(
    st.sampled_from(["$close", "$open", "$volume"]),
    st.integers(0, 100).map(str),
)


def _call(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    window = st.integers(0, 60).map(str)
    return st.one_of(
        st.tuples(st.sampled_from(["Mean", "Std", "Ref", "Rank", "Slope"]), children, window).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"
        ),
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", ">", "&"]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(st.sampled_from(["Greater", "Corr"]), children, children).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]}{', 5' if t[0] == 'Corr' else ''})"
        ),
    )


_OPS = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "Gt": ">", "And": "&"}


def _show(node: object) -> str:
    if isinstance(node, Field):
        return f"${node.name}"
    if isinstance(node, Const):
        return repr(node.value)
    assert isinstance(node, Call)
    if node.op in _OPS:
        return f"({_show(node.args[0])} {_OPS[node.op]} {_show(node.args[1])})"
    parts = [_show(a) for a in node.args] + [str(p) for p in node.params]
    return f"{node.op}({', '.join(parts)})"


@given(st.recursive(_leaf, _call, max_leaves=12))
def test_random_expressions_round_trip(source: str) -> None:
    node = parse(source)
    assert parse(_show(node)) == node
