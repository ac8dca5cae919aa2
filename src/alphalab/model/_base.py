"""The model interface (Qlib's ``Model``/``ModelFT``).

Models report each boosting round or epoch through :func:`alphalab._training.report_training`
(re-exported by ``alphalab.model``), never to a run directly.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from alphalab._memory import drop_mapped_pages
from alphalab.data._columns import KEYS, keys_to_index, split_column
from alphalab.exceptions import ConfigError, DataError


class BaseModel:
    """Anything that predicts from a dataset."""

    def predict(self, dataset: Any, segment: str = "test") -> pd.Series:
        """Scores indexed by (datetime, instrument)."""
        raise NotImplementedError

    def __call__(self, dataset: Any, segment: str = "test") -> pd.Series:
        return self.predict(dataset, segment)


class Model(BaseModel):
    """A learnable model: ``fit(dataset)`` then ``predict(dataset, segment)``.

    Construction only stores parameters; learned state lives in attributes ending in ``_``.
    Models pickle, so ``R.save_objects(**{"params.pkl": model})`` round-trips them.
    """

    def fit(
        self, dataset: Any, evals_result: dict[str, Any] | None = None, reweighter: Any = None
    ) -> Model:
        """Train on the dataset's ``train`` segment (validating on ``valid`` when present)."""
        raise NotImplementedError


class ModelFT(Model):
    """A model that can continue training from its fitted state."""

    def finetune(self, dataset: Any, **kwargs: Any) -> ModelFT:
        """Continue training on ``dataset``'s ``train`` segment."""
        raise NotImplementedError


def check_labels(y: np.ndarray, segment: str) -> None:
    """Reject NaN or infinite labels with a message that says where to fix them."""
    bad = ~np.isfinite(y)
    if bad.any():
        raise DataError(
            f"The {segment!r} segment has {int(bad.sum())} NaN/inf label(s) out of {y.size}; "
            "add DropnaLabel to learn_processors or clean the label expression"
        )


def segment_names(dataset: Any) -> list[str]:
    """Names of the dataset's segments (empty when it has none)."""
    return list(getattr(dataset, "segments", {}) or {})


class SegmentArrays:
    """A segment (or a piece of one) as the arrays tree and linear models train and predict on.

    ``x`` is float32 (C order) with NaN where a value is missing; ``y`` has one float64 column
    per label (None without labels); ``keys`` holds the rows' datetime and instrument. Each
    array is made from the Polars frame when first used, so a pass that only needs the labels
    never copies the features.
    """

    def __init__(self, frame: pl.DataFrame) -> None:
        self._frame = frame
        self._features = [c for c in frame.columns if split_column(c)[0] == "feature"]
        self._labels = [c for c in frame.columns if split_column(c)[0] == "label"]
        self.feature_names = [split_column(c)[1] for c in self._features]

    def __len__(self) -> int:
        return self._frame.height

    @functools.cached_property
    def x(self) -> np.ndarray:
        """The features, rows by columns."""
        return self._frame.select(self._features).to_numpy(order="c")

    @functools.cached_property
    def y(self) -> np.ndarray | None:
        """The labels, rows by label columns (None when the frame has none)."""
        if not self._labels:
            return None
        return self._frame.select(self._labels).cast(pl.Float64).to_numpy()

    @property
    def keys(self) -> pl.DataFrame:
        """The rows' datetime and instrument."""
        return self._frame.select(KEYS)

    @property
    def index(self) -> pd.MultiIndex:
        """The rows as Qlib's (datetime, instrument) index."""
        return keys_to_index(self.keys)


def segment_arrays(
    dataset: Any, segment: str, data_key: str, *, labels: bool = True
) -> SegmentArrays:
    """Read a segment of ``dataset`` straight into arrays.

    No pandas frame is made on the way: it would be one more copy of the segment while a
    model is being built.
    """
    _check_dataset(dataset)
    col_set = ["feature", "label"] if labels else "feature"
    return SegmentArrays(dataset.prepare_polars(segment, col_set=col_set, data_key=data_key))


#: Rows per piece when a segment is streamed: small enough to be negligible next to the model.
CHUNK_ROWS = 10_000


def segment_chunks(
    dataset: Any, segment: str, data_key: str, *, labels: bool = True
) -> Iterator[SegmentArrays]:
    """A segment as arrays, a run of whole dates at a time (see ``DatasetH.prepare_chunks``).

    Pages of memory-mapped features read for a piece are unloaded once it is used, so reading
    a segment this way keeps about one piece of it in memory.
    """
    _check_dataset(dataset)
    col_set = ["feature", "label"] if labels else "feature"
    for frame in dataset.prepare_chunks(segment, col_set, data_key, rows=CHUNK_ROWS):
        yield SegmentArrays(frame)
        drop_mapped_pages()


def _check_dataset(dataset: Any) -> None:
    if not hasattr(dataset, "prepare_polars"):
        raise ConfigError(
            f"This model needs an alphalab dataset (DatasetH, TSDatasetH); got {dataset!r}"
        )
