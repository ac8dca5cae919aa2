"""LightGBM datasets built from a segment streamed in pieces, never held whole.

``lgb.Dataset(matrix)`` needs the whole float32 matrix, and LightGBM then copies the rows it
samples to find the bin boundaries into growing per-feature vectors: for Alpha158 on 300 stocks
that is ~160 MB of matrix plus ~450 MB of sample at once. Here the same rows are sampled
(LightGBM's own sampler and seed), written once into exact-size float64 columns, the bins are
found from them, and then the rows are pushed a piece at a time. The binned dataset, and so
the model, is the one LightGBM builds from the matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import lightgbm as lgb
import numpy as np
from lightgbm.basic import ZERO_THRESHOLD

from alphalab.exceptions import DataError
from alphalab.model._base import SegmentArrays, check_labels

Chunks = Callable[[], Iterator[SegmentArrays]]


def stream_dataset(
    chunks: Chunks, segment: str, params: dict[str, Any], reference: lgb.Dataset | None = None
) -> tuple[lgb.Dataset, list[str]]:
    """A constructed ``lgb.Dataset`` of the rows ``chunks()`` yields, and the feature names.

    The rows are read 2-3 times. LightGBM names the features ``Column_<i>``, as it does for a
    matrix (it rejects names with JSON punctuation, which expression names often have).

    Args:
        chunks: Yields the segment's rows in order, the same rows on every call, with labels.
        segment: The segment's name, for error messages.
        params: LightGBM parameters (the binning ones are used here).
        reference: The training dataset when this is a validation set (its bins are used).
    """
    labels, names = [], []
    for part in chunks():
        labels.append(label_column(part, segment))
        names = part.feature_names
    y = np.concatenate(labels)
    check_labels(y, segment)
    dataset = lgb.Dataset(None, params=params, reference=reference)
    if reference is None:
        values, rows, sample_count = _sample_columns(dataset, chunks, len(y), len(names))
        dataset._init_from_sample(values, rows, sample_count, len(y))
        del values, rows
    else:
        handle = reference.construct()._handle
        assert handle is not None  # constructed
        dataset._init_from_ref_dataset(len(y), handle)
    for part in chunks():  # the last push completes the dataset
        dataset._push_rows(part.x)
    return dataset.set_label(y), names


def label_column(part: SegmentArrays, segment: str) -> np.ndarray:
    """The one label column LightGBM trains on, as a flat array."""
    assert part.y is not None
    if part.y.shape[1] != 1:
        raise DataError(
            f"LGBModel trains on one label column; the {segment!r} segment has {part.y.shape[1]}"
        )
    return part.y.ravel()


def _sample_columns(
    dataset: lgb.Dataset, chunks: Chunks, n_rows: int, n_features: int
) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """LightGBM's bin-finding sample: per feature, the sampled values it does not treat as 0.

    The same rows and values ``LGBM_DatasetCreateFromMat`` samples (its sampler, float32 read
    as float64, magnitudes up to ``ZERO_THRESHOLD`` left out unless NaN).
    """
    indices = dataset._create_sample_indices(total_nrow=n_rows)  # sorted
    sample = np.empty((n_features, len(indices)), dtype=np.float64)
    done, offset = 0, 0
    for part in chunks():
        end = int(np.searchsorted(indices, offset + len(part)))
        sample[:, done:end] = part.x[indices[done:end] - offset].T
        done, offset = end, offset + len(part)
    every_row = np.arange(len(indices), dtype=np.int32)
    values, rows = [], []
    for column in sample:
        kept = (np.abs(column) > ZERO_THRESHOLD) | np.isnan(column)
        if kept.all():  # most features never sample an exact zero
            values.append(column)
            rows.append(every_row)
        else:  # compacted in place: a copy of every such column would add up
            count = int(kept.sum())
            column[:count] = column[kept]
            values.append(column[:count])
            rows.append(np.flatnonzero(kept).astype(np.int32))
    return values, rows, len(indices)
