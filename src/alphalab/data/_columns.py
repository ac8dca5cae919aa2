"""Column groups of feature frames.

Inside alphalab a feature frame is one Polars frame with ``datetime`` and ``instrument`` key
columns and value columns named ``"<group>/<name>"`` (``feature/KMID``, ``label/LABEL0``).
At the public boundary this becomes Qlib's pandas frame with a two-level column index
(group, name). Missing values are nulls inside, NaN in pandas.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
import polars as pl

from alphalab.exceptions import ConfigError

KEYS = ("datetime", "instrument")
SEP = "/"


def column(group: str, name: str) -> str:
    """The internal column name of ``name`` in ``group``."""
    return f"{group}{SEP}{name}"


def split_column(col: str) -> tuple[str, str]:
    """Return ``(group, name)`` of an internal column name."""
    group, _, name = col.partition(SEP)
    return group, name


def value_columns(frame: pl.DataFrame) -> list[str]:
    """Every value column (all but the keys), in frame order."""
    return [c for c in frame.columns if c not in KEYS]


def groups(frame: pl.DataFrame) -> list[str]:
    """The column groups present, in order of first appearance."""
    seen: dict[str, None] = {}
    for col in value_columns(frame):
        seen.setdefault(split_column(col)[0], None)
    return list(seen)


def select_columns(frame: pl.DataFrame, col_set: str | Sequence[str] | None) -> list[str]:
    """Value columns of the groups in ``col_set`` (``"__all"``/None: every group).

    Raises:
        ConfigError: for a group the frame does not have.
    """
    if col_set is None or col_set == "__all":
        return value_columns(frame)
    wanted = [col_set] if isinstance(col_set, str) else list(col_set)
    present = groups(frame)
    missing = [g for g in wanted if g not in present]
    if missing:
        raise ConfigError(f"Unknown column group(s) {missing}; the data has: {present}")
    return [c for g in wanted for c in value_columns(frame) if split_column(c)[0] == g]


def group_columns(frame: pl.DataFrame, fields_group: str | Iterable[str] | None) -> list[str]:
    """Columns a processor acts on: a group name, several, or None for every value column."""
    if fields_group is None:
        return value_columns(frame)
    names = [fields_group] if isinstance(fields_group, str) else list(fields_group)
    return [c for c in value_columns(frame) if split_column(c)[0] in names]


def to_pandas(frame: pl.DataFrame, columns: Sequence[str], squeeze: bool = False) -> pd.DataFrame:
    """Convert to Qlib's shape: index (datetime, instrument), columns (group, name), NaN."""
    selected = frame.select([*KEYS, *columns])
    if not selected.get_column("datetime").is_sorted():  # handler frames are kept sorted
        selected = selected.sort(KEYS)
    values = selected.select(columns).fill_null(float("nan")).to_numpy() if columns else None
    index = keys_to_index(selected)
    if squeeze:
        names = [split_column(c)[1] for c in columns]
        return pd.DataFrame(values, index=index, columns=pd.Index(names), copy=False)
    header = pd.MultiIndex.from_tuples([split_column(c) for c in columns])
    return pd.DataFrame(values, index=index, columns=header, copy=False)


def keys_to_index(frame: pl.DataFrame) -> pd.MultiIndex:
    """The (datetime, instrument) index of a frame's rows, in their order."""
    return pd.MultiIndex.from_arrays(
        [
            pd.DatetimeIndex(frame["datetime"].cast(pl.Datetime("ns")).to_numpy()),
            pd.Index(frame["instrument"].to_numpy(), dtype=object),
        ],
        names=list(KEYS),
    )
