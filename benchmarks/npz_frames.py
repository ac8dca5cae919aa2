"""Frames exchanged between the two environments as ``.npz`` (no pickles: they may run
different pandas versions). Needs only numpy and pandas, which both environments have."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def save_frame(path: str | Path, frame: pd.DataFrame) -> None:
    """Write a (datetime, instrument)-indexed numeric frame as npz (dates as int64 days)."""
    frame = frame.sort_index()
    dates = pd.DatetimeIndex(frame.index.get_level_values("datetime"))
    np.savez(
        path,
        dates=dates.values.astype("datetime64[D]").astype("int64"),
        instruments=np.asarray(frame.index.get_level_values("instrument"), dtype=str),
        columns=np.asarray([str(c) for c in frame.columns], dtype=str),
        values=frame.to_numpy(dtype="float64"),
    )


def load_frame(path: str | Path) -> pd.DataFrame:
    """Read what :func:`save_frame` wrote."""
    with np.load(path, allow_pickle=False) as z:
        index = pd.MultiIndex.from_arrays(
            [pd.to_datetime(z["dates"].astype("datetime64[D]")), z["instruments"]],
            names=["datetime", "instrument"],
        )
        return pd.DataFrame(z["values"], index=index, columns=list(z["columns"]))


def save_rolling(path: str | Path, collected: dict[Any, Any]) -> dict[str, int]:
    """Save a rolling study's ensembled predictions (one group: the model); their size."""
    (frame,) = collected["pred"].values()
    frame = frame.to_frame("score") if isinstance(frame, pd.Series) else frame[["score"]]
    save_frame(path, frame)
    return {"rows": len(frame), "days": int(frame.index.get_level_values(0).nunique())}
