"""The one module that knows Polars: compile lowered ASTs to Polars expressions and run them.

Frame convention: a long frame with columns ``datetime``, ``instrument`` and one Float64 column
per field, sorted by (instrument, datetime). Missing values are **nulls**: NaN in the input is
turned into null on entry, and every operator that can create NaN (0/0, log of a negative
number, inf - inf, statistics of too few values) turns it into null, so rolling windows skip
missing values the way pandas skips NaN and no NaN ever reaches the output. ±inf is kept (x/0).

Rolling operators run ``.over`` the instrument (through a sorted integer id of it, which
Polars groups far faster than strings), cross-sectional ones ``.over("datetime")``.

Common sub-expressions: the lowered ASTs of all requested expressions are hash-consed into one
graph; every non-trivial node used more than once is materialised once as a temporary column,
in batches (one ``with_columns`` per dependency level); the rest is inlined, where Polars' own
common sub-expression elimination within a ``with_columns`` applies. Each output is computed in
the first batch where its inputs exist, and each temporary column is dropped after its last
reader, which keeps peak memory near the output's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import polars as pl

from alphalab.data.expr._ast import Call, Const, Field, Node, Param
from alphalab.exceptions import DataError

DATETIME = "datetime"
INSTRUMENT = "instrument"
# A sorted integer id of the instrument: grouping by it is an order of magnitude cheaper than
# hashing instrument names in every ``over``.
_GROUP = "__instrument_id"
F64 = pl.Float64

# _ArgKey packs (dense rank of the value, reversed row number) into one Int64.
_POS_BITS = 21
_POS_MASK = (1 << _POS_BITS) - 1
MAX_ROWS_PER_INSTRUMENT = _POS_MASK


@dataclass(frozen=True, slots=True)
class _Ctx:
    height: int  # the window of an expanding (N = 0) operator: the whole frame

    def window(self, n: Param) -> int:
        size = int(n)
        return size if size > 0 else max(self.height, 1)


def _inst(e: pl.Expr) -> pl.Expr:
    return e.over(_GROUP)


def _clean(e: pl.Expr) -> pl.Expr:
    # NaN -> null. Not fill_nan: Polars expands it to when/then referencing ``e`` three times,
    # which nests exponentially when cleaned expressions are inlined into one another.
    return e.replace(float("nan"), None)


def _f(e: pl.Expr) -> pl.Expr:
    return e.cast(F64)


Compiler = Callable[[list[pl.Expr], tuple[Param, ...], _Ctx], pl.Expr]


def _binary(fn: Callable[[pl.Expr, pl.Expr], pl.Expr], clean: bool = True) -> Compiler:
    def compile_(a: list[pl.Expr], p: tuple[Param, ...], c: _Ctx) -> pl.Expr:
        out = fn(a[0], a[1])
        return _clean(out) if clean else out

    return compile_


def _unary(fn: Callable[[pl.Expr], pl.Expr]) -> Compiler:
    return lambda a, p, c: fn(a[0])


def _strict(fn: Callable[[pl.Expr, pl.Expr], pl.Expr]) -> Compiler:
    """A logical operator that is missing when either operand is (no Kleene logic)."""

    def compile_(a: list[pl.Expr], p: tuple[Param, ...], c: _Ctx) -> pl.Expr:
        x, y = a
        return pl.when(x.is_not_null() & y.is_not_null()).then(_f(fn(x != 0, y != 0)))

    return compile_


def _rolling(fn: Callable[[pl.Expr, int], pl.Expr], clean: bool = False) -> Compiler:
    def compile_(a: list[pl.Expr], p: tuple[Param, ...], c: _Ctx) -> pl.Expr:
        out = _inst(fn(a[0], c.window(p[0])))
        return _clean(out) if clean else out

    return compile_


def _ref(a: list[pl.Expr], p: tuple[Param, ...], c: _Ctx) -> pl.Expr:
    n = int(p[0])
    return _inst(a[0].first() if n == 0 else a[0].shift(n))


def _quantile(a: list[pl.Expr], p: tuple[Param, ...], c: _Ctx) -> pl.Expr:
    w, q = c.window(p[0]), float(p[1])
    return _inst(a[0].rolling_quantile(q, "linear", w, min_samples=1))


def _ema(a: list[pl.Expr], p: tuple[Param, ...], c: _Ctx) -> pl.Expr:
    n = p[0]
    if isinstance(n, int):
        ewm = a[0].ewm_mean(span=n, adjust=True, min_samples=1, ignore_nulls=False)
    else:
        ewm = a[0].ewm_mean(alpha=float(n), adjust=True, min_samples=1, ignore_nulls=False)
    # pandas carries the last mean over missing rows; Polars leaves them missing
    return _inst(ewm.forward_fill())


def _pos() -> pl.Expr:
    return _inst(pl.int_range(pl.len(), dtype=pl.Int64))


def _arg_key(a: list[pl.Expr], p: tuple[Param, ...], c: _Ctx) -> pl.Expr:
    ranked = a[0].rank("dense", descending=int(p[0]) < 0).cast(pl.Int64)
    return ranked * (1 << _POS_BITS) + (_POS_MASK - _pos())


def _idx_from_key(a: list[pl.Expr], p: tuple[Param, ...], c: _Ctx) -> pl.Expr:
    key, pos = a
    n = int(p[0])
    best = _inst(key.rolling_max(c.window(n), min_samples=1))
    best_pos = _f(_POS_MASK - (best % (1 << _POS_BITS)))
    start = pl.lit(0.0) if n == 0 else pl.max_horizontal(pos - (n - 1), pl.lit(0.0))
    return best_pos - start + 1.0


def _mask(a: list[pl.Expr], p: tuple[Param, ...], c: _Ctx) -> pl.Expr:
    return a[0].filter(pl.col(INSTRUMENT) == str(p[0])).first().over(DATETIME)


def _cs_rank(a: list[pl.Expr], p: tuple[Param, ...], c: _Ctx) -> pl.Expr:
    x = a[0]
    return x.rank("average").over(DATETIME) / x.count().over(DATETIME)


def _cs_zscore(a: list[pl.Expr], p: tuple[Param, ...], c: _Ctx) -> pl.Expr:
    x = a[0]
    return _clean((x - x.mean().over(DATETIME)) / x.std(ddof=1).over(DATETIME))


def _finite(a: list[pl.Expr], p: tuple[Param, ...], c: _Ctx) -> pl.Expr:
    return a[0].replace([float("inf"), float("-inf")], None)


def _null_if_below(a: list[pl.Expr], p: tuple[Param, ...], c: _Ctx) -> pl.Expr:
    n, x = a
    return pl.when(n >= float(p[0])).then(x)


def _null_if_small(a: list[pl.Expr], p: tuple[Param, ...], c: _Ctx) -> pl.Expr:
    s, x = a
    return pl.when(s.abs() <= float(p[0])).then(None).otherwise(x)


COMPILERS: dict[str, Compiler] = {
    "Add": _binary(lambda x, y: x + y),
    "Sub": _binary(lambda x, y: x - y),
    "Mul": _binary(lambda x, y: x * y),
    "Div": _binary(lambda x, y: x / y),
    "Power": _binary(lambda x, y: x.pow(y)),
    "Gt": _binary(lambda x, y: _f(x > y), clean=False),
    "Ge": _binary(lambda x, y: _f(x >= y), clean=False),
    "Lt": _binary(lambda x, y: _f(x < y), clean=False),
    "Le": _binary(lambda x, y: _f(x <= y), clean=False),
    "Eq": _binary(lambda x, y: _f(x == y), clean=False),
    "Ne": _binary(lambda x, y: _f(x != y), clean=False),
    "Greater": _binary(lambda x, y: pl.when(x >= y).then(x).when(x < y).then(y), clean=False),
    "Less": _binary(lambda x, y: pl.when(x <= y).then(x).when(x > y).then(y), clean=False),
    "And": _strict(lambda x, y: x & y),
    "Or": _strict(lambda x, y: x | y),
    "Not": _unary(lambda x: _f(x == 0)),
    "Abs": _unary(lambda x: x.abs()),
    "Sign": _unary(lambda x: x.sign()),
    "Log": _unary(lambda x: _clean(x.log())),
    "_Neg": _unary(lambda x: -x),
    "If": lambda a, p, c: pl.when(a[0] != 0).then(a[1]).when(a[0] == 0).then(a[2]),
    "Mask": _mask,
    "Ref": _ref,
    "Mean": _rolling(lambda x, w: x.rolling_mean(w, min_samples=1), clean=True),
    "Sum": _rolling(lambda x, w: x.rolling_sum(w, min_samples=1), clean=True),
    "Std": _rolling(lambda x, w: x.rolling_std(w, min_samples=1), clean=True),
    "Var": _rolling(lambda x, w: x.rolling_var(w, min_samples=1), clean=True),
    "Max": _rolling(lambda x, w: x.rolling_max(w, min_samples=1)),
    "Min": _rolling(lambda x, w: x.rolling_min(w, min_samples=1)),
    "Med": _rolling(lambda x, w: x.rolling_median(w, min_samples=1)),
    "Skew": _rolling(lambda x, w: x.rolling_skew(w, bias=False, min_samples=1), clean=True),
    "Kurt": _rolling(
        lambda x, w: x.rolling_kurtosis(w, fisher=True, bias=False, min_samples=1), clean=True
    ),
    "Quantile": _quantile,
    "EMA": _ema,
    "CSRank": _cs_rank,
    "CSZScore": _cs_zscore,
    "_Valid": _unary(lambda x: _f(x.is_not_null())),
    "_CumSum": _unary(lambda x: _inst(x.cum_sum())),
    "_ShiftZero": lambda a, p, c: _inst(a[0].shift(int(p[0]), fill_value=0.0)),
    "_Pos": lambda a, p, c: _f(_pos()),
    "_MaskBy": lambda a, p, c: pl.when(a[1].is_not_null()).then(a[0]),
    "_NullIfSmall": _null_if_small,
    "_NullIfBelow": _null_if_below,
    "_Finite": _finite,
    "_RollRank": _rolling(lambda x, w: x.rolling_rank(w, "average", min_samples=1)),
    "_ArgKey": _arg_key,
    "_IdxFromKey": _idx_from_key,
}

# Nodes never worth a temporary column of their own.
_TRIVIAL = frozenset({"_Valid", "_Neg"})


@dataclass(frozen=True, slots=True)
class Batch:
    """One ``with_columns`` of a plan.

    Attributes:
        temporaries: (column name, node) of the shared nodes computed here.
        outputs: (output position, node) of the requested expressions computed here.
        drops: Temporary columns no later batch reads, dropped after this one.
    """

    temporaries: tuple[tuple[str, Call], ...]
    outputs: tuple[tuple[int, Node], ...]
    drops: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """How a set of lowered expressions is evaluated.

    Attributes:
        batches: Run in order; a batch only reads columns of earlier batches.
        n_nodes: Distinct operator nodes in the graph.
        n_references: Operator nodes counted once per use (the work without sharing).
    """

    batches: tuple[Batch, ...]
    n_nodes: int
    n_references: int

    @property
    def n_shared(self) -> int:
        """The number of temporary columns (nodes computed once and used several times)."""
        return sum(len(b.temporaries) for b in self.batches)

    @property
    def cross_sectional(self) -> bool:
        """Whether an operator reads other instruments of the same date (CSRank, Mask...)."""
        stack: list[Node] = [n for b in self.batches for _, n in (*b.temporaries, *b.outputs)]
        seen: set[int] = set()
        while stack:
            node = stack.pop()
            if isinstance(node, Call) and id(node) not in seen:
                if node.op in _CROSS_SECTIONAL:
                    return True
                seen.add(id(node))
                stack.extend(node.args)
        return False


def make_plan(roots: Sequence[Node], *, share: bool = True) -> Plan:
    """Hash-cons ``roots`` into one graph and choose which nodes to materialise."""
    canon: dict[tuple[object, ...], Node] = {}
    memo: dict[int, Node] = {}
    refs: dict[int, int] = {}

    def intern(node: Node) -> Node:
        found = memo.get(id(node))
        if found is not None:
            return found
        if isinstance(node, Call):
            args = tuple(intern(a) for a in node.args)
            key: tuple[object, ...] = ("call", node.op, tuple(id(a) for a in args), node.params)
            result = canon.get(key)
            if result is None:
                result = Call(node.op, args, node.params, node.pos)
                canon[key] = result
                refs[id(result)] = 0
                for a in args:
                    if isinstance(a, Call):
                        refs[id(a)] += 1
        elif isinstance(node, Field):
            result = canon.setdefault(("field", node.name), node)
        else:
            result = canon.setdefault(("const", node.value), node)
        memo[id(node)] = result
        return result

    canonical_roots = tuple(intern(r) for r in roots)
    for r in canonical_roots:  # a requested expression is one more use of its node
        if isinstance(r, Call):
            refs[id(r)] += 1
    calls = {id(n): n for n in canon.values() if isinstance(n, Call)}
    n_references = _count_references(roots)
    if not share:
        outputs = tuple(enumerate(canonical_roots))
        return Plan((Batch((), outputs, ()),), len(calls), n_references)

    shared = {
        i
        for i, n in calls.items()
        if refs.get(i, 0) >= 2 and n.op not in _TRIVIAL and (n.args or n.op == "_Pos")
    }
    stage_of: dict[int, int] = {}

    def depth(node: Node) -> int:
        """The batch after which ``node`` can be evaluated (its temporary's batch + 1)."""
        if not isinstance(node, Call):
            return 0
        if id(node) in stage_of:
            return stage_of[id(node)]
        inner = max((depth(a) for a in node.args), default=0)
        if id(node) in shared:
            stage_of[id(node)] = inner + 1
            return inner + 1
        return inner

    root_depths = [depth(r) for r in canonical_roots]
    for i in shared:
        depth(calls[i])
    n_batches = max([*stage_of.values(), *root_depths], default=0) + 1
    temporaries: list[list[tuple[str, Call]]] = [[] for _ in range(n_batches)]
    outputs_of: list[list[tuple[int, Node]]] = [[] for _ in range(n_batches)]
    names: dict[int, str] = {}
    for k, (i, stage) in enumerate(sorted(stage_of.items(), key=lambda item: item[1])):
        names[i] = f"__expr_{k}"
        temporaries[stage - 1].append((names[i], calls[i]))
    for j, (root, d) in enumerate(zip(canonical_roots, root_depths, strict=True)):
        outputs_of[d].append((j, root))

    # Outputs are computed as soon as what they read exists, and a temporary column is dropped
    # after the last batch that reads it, so few are alive at a time.
    last_use: dict[int, int] = {}
    for b in range(n_batches):
        readers: list[Node] = [a for _, node in temporaries[b] for a in node.args]
        readers += [node for _, node in outputs_of[b]]
        for i in _read_columns(readers, shared):
            last_use[i] = b
    batches = tuple(
        Batch(
            tuple(temporaries[b]),
            tuple(outputs_of[b]),
            tuple(names[i] for i, last in last_use.items() if last == b),
        )
        for b in range(n_batches)
    )
    return Plan(batches, len(calls), n_references)


def _read_columns(nodes: Sequence[Node], shared: set[int]) -> set[int]:
    """The materialised nodes that an inlined evaluation of ``nodes`` reads."""
    found: set[int] = set()
    seen: set[int] = set()
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if not isinstance(node, Call) or id(node) in seen:
            continue
        seen.add(id(node))
        if id(node) in shared:
            found.add(id(node))
        else:
            stack.extend(node.args)
    return found


def _count_references(roots: Sequence[Node]) -> int:
    total = 0
    stack = list(roots)
    while stack:
        node = stack.pop()
        if isinstance(node, Call):
            total += 1
            stack.extend(node.args)
    return total


def _to_polars(
    node: Node, columns: dict[int, str], ctx: _Ctx, cache: dict[int, pl.Expr]
) -> pl.Expr:
    if isinstance(node, Field):
        return pl.col(node.name)
    if isinstance(node, Const):
        return pl.lit(node.value, dtype=F64)
    name = columns.get(id(node))
    if name is not None:
        return pl.col(name)
    found = cache.get(id(node))
    if found is not None:
        return found
    args = [_to_polars(a, columns, ctx, cache) for a in node.args]
    result = COMPILERS[node.op](args, node.params, ctx)
    cache[id(node)] = result
    return result


def check_sorted(frame: pl.DataFrame) -> pl.DataFrame:
    """Return ``frame`` sorted by (instrument, datetime), refusing duplicate rows."""
    inst, dt = pl.col(INSTRUMENT), pl.col(DATETIME)
    nxt_inst, nxt_dt = inst.shift(-1), dt.shift(-1)
    out_of_order = (inst > nxt_inst) | ((inst == nxt_inst) & (dt >= nxt_dt))
    if frame.height > 1 and frame.select(out_of_order.any()).item():
        frame = frame.sort(INSTRUMENT, DATETIME)
        duplicated = (inst == nxt_inst) & (dt == nxt_dt)
        if frame.select(duplicated.any()).item():
            raise DataError("the frame has several rows for the same (instrument, datetime)")
    return frame


#: Operators whose value on a date depends on other instruments.
_CROSS_SECTIONAL = frozenset({"CSRank", "CSZScore", "Mask"})
#: Rows evaluated at a time when no operator is cross-sectional: the shared float64
#: temporaries then exist for one group of instruments at a time, not for the whole frame.
CHUNK_ROWS = 150_000


def iter_plan(
    plan: Plan,
    frame: pl.DataFrame,
    fields: Sequence[str],
    names: Sequence[str],
    progress: Callable[[int, int], None] | None = None,
    dtype: type[pl.Float32] | type[pl.Float64] = F64,
) -> Iterator[pl.DataFrame]:
    """Evaluate ``plan`` on ``frame`` in pieces of whole instruments, one after the other.

    ``frame`` must hold ``datetime``, ``instrument`` and ``fields``; it is sorted by
    (instrument, datetime) first when it is not already. Each piece is ``datetime,
    instrument, *names`` as ``dtype``; concatenated, the pieces are the whole result.
    ``progress(done, total)`` is called after each batch with the outputs computed so far.
    Only one piece's float64 temporaries exist at a time; a plan with cross-sectional
    operators (they need every instrument of a date) gives one piece.
    """
    frame = check_sorted(frame.select(DATETIME, INSTRUMENT, *fields))
    if frame.height > MAX_ROWS_PER_INSTRUMENT:
        longest = frame.group_by(INSTRUMENT).len().get_column("len").max()
        if isinstance(longest, int) and longest > MAX_ROWS_PER_INSTRUMENT:
            raise DataError(f"an instrument has more than {MAX_ROWS_PER_INSTRUMENT} rows")
    if plan.cross_sectional or frame.height <= CHUNK_ROWS:
        yield _run_rows(plan, frame, fields, names, progress, dtype)
        return
    chunks = _instrument_chunks(frame, CHUNK_ROWS)
    del frame
    for k, chunk in enumerate(chunks):

        def chunk_progress(done: int, total: int, k: int = k) -> None:
            if progress is not None:
                progress(k * total + done, len(chunks) * total)

        yield _run_rows(plan, chunk, fields, names, chunk_progress, dtype)


def _instrument_chunks(frame: pl.DataFrame, rows: int) -> list[pl.DataFrame]:
    """Zero-copy slices of ``frame`` (sorted by instrument), whole instruments, ~``rows`` each."""
    counts = frame.group_by(INSTRUMENT, maintain_order=True).len().get_column("len").to_list()
    chunks, start, size = [], 0, 0
    for count in counts:
        size += count
        if size >= rows:
            chunks.append(frame.slice(start, size))
            start, size = start + size, 0
    if size:
        chunks.append(frame.slice(start, size))
    return chunks


def _run_rows(
    plan: Plan,
    frame: pl.DataFrame,
    fields: Sequence[str],
    names: Sequence[str],
    progress: Callable[[int, int], None] | None,
    dtype: type[pl.Float32] | type[pl.Float64],
) -> pl.DataFrame:
    inst = pl.col(INSTRUMENT)
    group = (inst != inst.shift(1)).fill_null(True).cum_sum().cast(pl.UInt32)
    work = frame.with_columns(_clean(pl.col(f).cast(F64)) for f in fields)
    work = work.with_columns(group.alias(_GROUP)).with_columns(pl.col(_GROUP).set_sorted())
    ctx = _Ctx(frame.height)
    columns: dict[int, str] = {}
    done = 0
    for batch in plan.batches:
        cache: dict[int, pl.Expr] = {}
        exprs = [_to_polars(node, columns, ctx, cache).alias(n) for n, node in batch.temporaries]
        exprs += [
            _to_polars(node, columns, ctx, cache).cast(dtype).alias(f"__out_{j}")
            for j, node in batch.outputs
        ]
        work = work.with_columns(exprs).drop(batch.drops)
        columns.update({id(node): name for name, node in batch.temporaries})
        if progress is not None:
            done += len(batch.outputs)
            progress(done, len(names))
    outputs = [pl.col(f"__out_{j}").alias(name) for j, name in enumerate(names)]
    return work.select(DATETIME, INSTRUMENT, *outputs)
