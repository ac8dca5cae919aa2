"""A LightGBM dataset streamed in pieces trains the model the whole matrix does."""

from __future__ import annotations

import itertools

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from alphalab.exceptions import DataError
from alphalab.model._base import SegmentArrays
from alphalab.model._lgb_stream import stream_dataset


def _matrix(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6)).astype(np.float32)
    x[rng.random(rows) < 0.1, 1] = np.nan  # missing values
    x[rng.random(rows) < 0.3, 2] = 0.0  # exact zeros: left out of the bin sample
    x[:, 3] = np.round(x[:, 3])  # few distinct values
    x[:, 5] = 1.0  # constant
    y = x[:, 0] * 0.5 - np.nan_to_num(x[:, 1]) * 0.2 + rng.normal(scale=0.5, size=rows)
    return x, y


def _pieces(x: np.ndarray, y: np.ndarray, sizes: list[int]):
    names = [f"f{k}" for k in range(x.shape[1])]
    bounds = np.cumsum([0, *sizes])
    assert bounds[-1] == len(x)

    keys = {"datetime": np.arange(len(x)), "instrument": ["A"] * len(x)}
    frame = pl.DataFrame(
        {**keys, **{f"feature/{n}": x[:, k] for k, n in enumerate(names)}, "label/Y": y}
    )

    def chunks():
        for lo, hi in itertools.pairwise(bounds):
            yield SegmentArrays(frame.slice(lo, hi - lo))

    return chunks


@pytest.mark.parametrize("sample_count", [1000, 200000])
def test_streamed_datasets_train_the_same_model_as_the_matrix(sample_count: int) -> None:
    params = {
        "objective": "regression",
        "verbosity": -1,
        "num_threads": 1,
        "bin_construct_sample_cnt": sample_count,  # 1000: bins from a sample of the rows
        "num_leaves": 15,
    }
    x, y = _matrix(3000, seed=1)
    xv, yv = _matrix(800, seed=2)

    def train(train_set: lgb.Dataset, valid_set: lgb.Dataset) -> lgb.Booster:
        return lgb.train(params, train_set, num_boost_round=20, valid_sets=[train_set, valid_set])

    whole = lgb.Dataset(x, label=y, params=params)
    expected = train(whole, lgb.Dataset(xv, label=yv, reference=whole, params=params))

    streamed, names = stream_dataset(_pieces(x, y, [700, 1100, 1200]), "train", params)
    valid, _ = stream_dataset(_pieces(xv, yv, [300, 500]), "valid", params, streamed)
    got = train(streamed, valid)

    assert streamed.num_data() == 3000 and valid.num_data() == 800
    assert names == ["f0", "f1", "f2", "f3", "f4", "f5"]
    assert got.model_to_string() == expected.model_to_string()
    np.testing.assert_array_equal(got.predict(xv), expected.predict(xv))


def test_streamed_labels_are_checked_over_all_pieces() -> None:
    x, y = _matrix(1000, seed=3)
    y[[5, 600]] = np.nan
    with pytest.raises(
        DataError, match=r"The 'train' segment has 2 NaN/inf label\(s\) out of 1000"
    ):
        stream_dataset(_pieces(x, y, [500, 500]), "train", {"verbosity": -1})
