from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from alphalab.data.dataset import TSDataSampler
from alphalab.exceptions import ConfigError


def frame_with_gaps() -> pl.DataFrame:
    days = [dt.datetime(2021, 1, d) for d in range(1, 9)]
    rows = []
    for i, d in enumerate(days):
        rows.append((d, "A", float(i), float(i) * 10))
        if i >= 1 and i not in (2, 3):  # B is listed from day 1, missing on days 2 and 3
            rows.append((d, "B", 100.0 + i, -float(i)))
    return pl.DataFrame(
        rows, schema=["datetime", "instrument", "feature/X", "label/Y"], orient="row"
    )


def test_windows_follow_the_calendar_with_nan_padding() -> None:
    frame = frame_with_gaps()
    sampler = TSDataSampler(frame, "2021-01-04", "2021-01-08", step_len=3)
    index = sampler.get_index()
    assert list(index[:3]) == [
        (np.datetime64("2021-01-04"), "A"),
        (np.datetime64("2021-01-05"), "A"),
        (np.datetime64("2021-01-05"), "B"),
    ]
    assert len(sampler) == 5 + 4  # A on 5 days, B on 4 (not on the 4th)
    first = sampler[0]  # A on 2021-01-04: days 2..4 -> values 1, 2, 3
    np.testing.assert_array_equal(first[:, 0], [1, 2, 3])
    np.testing.assert_array_equal(first[:, 1], [10, 20, 30])
    b5 = sampler[2]  # B on 2021-01-05: days 3, 4 missing, then 104
    assert np.isnan(b5[0, 0]) and np.isnan(b5[1, 0]) and b5[2, 0] == 104
    batch = sampler[np.array([0, 2])]
    assert batch.shape == (2, 3, 2)
    np.testing.assert_array_equal(batch[1], b5)
    assert sampler.columns == ["X", "Y"]


def test_windows_before_the_first_day_are_nan_and_fill_options() -> None:
    frame = frame_with_gaps()
    sampler = TSDataSampler(frame, None, "2021-01-02", step_len=4)
    a1 = sampler[0]
    assert np.isnan(a1[:3]).all() and a1[3, 0] == 0
    filled = TSDataSampler(frame, "2021-01-05", "2021-01-05", 3, fillna_type="ffill")
    b5 = filled[1]
    assert np.isnan(b5[0, 0]) and np.isnan(b5[1, 0])  # nothing before to carry forward
    both = TSDataSampler(frame, "2021-01-05", "2021-01-05", 3, fillna_type="ffill+bfill")
    np.testing.assert_array_equal(both[1][:, 0], [104, 104, 104])
    with pytest.raises(ConfigError, match="step_len must be >= 1; got 0"):
        TSDataSampler(frame, None, None, step_len=0)
    with pytest.raises(ConfigError, match="fillna_type must be"):
        TSDataSampler(frame, None, None, step_len=2, fillna_type="zero")


def test_matches_a_brute_force_window(seed: int) -> None:
    rng = np.random.default_rng(seed)
    days = [dt.datetime(2020, 1, 1) + dt.timedelta(days=i) for i in range(40)]
    rows = [
        (d, f"I{j}", rng.normal(), rng.normal())
        for d in days
        for j in range(5)
        if rng.random() > 0.2
    ]
    frame = pl.DataFrame(
        rows, schema=["datetime", "instrument", "feature/a", "label/b"], orient="row"
    )
    sampler = TSDataSampler(frame, "2020-01-15", None, step_len=6)
    lookup = {(r[0], r[1]): r[2:] for r in rows}
    all_days = sorted({r[0] for r in rows})
    for k, (when, code) in enumerate(sampler.get_index()):
        pos = all_days.index(when.to_pydatetime())
        expected = [
            lookup.get((all_days[p], code), (np.nan, np.nan)) if p >= 0 else (np.nan, np.nan)
            for p in range(pos - 5, pos + 1)
        ]
        np.testing.assert_allclose(sampler[k], np.array(expected, dtype=np.float32))
