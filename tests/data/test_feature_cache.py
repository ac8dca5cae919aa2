"""Feature cache files: written in pieces, read back mapped, equal to computing in memory."""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from alphalab._memory import release_free_memory
from alphalab.data.expr import _polars as engine
from alphalab.data.expr import alpha158
from alphalab.data.handler import _loader
from alphalab.data.handler._loader import QlibDataLoader, load_cached, read_mapped

START, END = "2018-03-01", "2019-06-30"


def _loader_for_alpha158() -> QlibDataLoader:
    exprs, names = alpha158()
    label = (["Ref($close, -2)/Ref($close, -1) - 1"], ["LABEL0"])
    return QlibDataLoader(config={"feature": (exprs, names), "label": label})


@pytest.mark.parametrize("instruments", ["csi300", ["SH600000", "SZ000001", "SZ000002"]])
def test_file_written_in_pieces_equals_the_frame_computed_in_memory(
    model_market_store, tmp_path, monkeypatch, instruments
) -> None:
    loader = _loader_for_alpha158()
    codes = model_market_store.instruments("csi300", START, END)
    if isinstance(instruments, list):
        instruments = codes[:3]
    expected = loader.load(model_market_store, instruments, START, END)
    # many instrument groups and date runs, so pieces are cut and joined everywhere
    monkeypatch.setattr(engine, "CHUNK_ROWS", 500)
    monkeypatch.setattr(_loader, "DATE_RUN_ROWS", 300)
    path = tmp_path / "features.arrow"
    loader.load_to_file(model_market_store, instruments, START, END, path)
    got = read_mapped(path)
    assert got.n_chunks() > 3
    assert_frame_equal(got, expected)
    assert [p.name for p in tmp_path.iterdir()] == ["features.arrow"]  # no scratch left


def test_mapped_frames_stay_readable_after_their_pages_are_released(
    model_market_store, tmp_path
) -> None:
    loader = _loader_for_alpha158()
    frame, _ = load_cached(loader, model_market_store, "csi300", START, END, tmp_path)
    before = frame.select(pl.col("feature/KMID").sum()).item()
    release_free_memory()
    assert frame.select(pl.col("feature/KMID").sum()).item() == before
    assert np.isfinite(before)


def test_unwritable_cache_falls_back_to_memory(
    model_market_store, tmp_path, monkeypatch, caplog
) -> None:
    loader = _loader_for_alpha158()

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(QlibDataLoader, "load_to_file", no_space)
    with caplog.at_level(logging.WARNING):
        frame, _ = load_cached(loader, model_market_store, "csi300", START, END, tmp_path)
    assert "Could not write the feature cache" in caplog.text
    assert_frame_equal(frame, loader.load(model_market_store, "csi300", START, END))
    assert not list((tmp_path / "features").glob("*"))


def test_cross_sectional_and_empty_results_through_the_cache(model_market_store, tmp_path) -> None:
    codes = model_market_store.instruments("csi300", START, END)[:4]
    loader = QlibDataLoader(
        config={"feature": (["CSRank($close)", "$close/Ref($close, 1)"], ["RANK", "RET"])}
    )
    frame, _ = load_cached(loader, model_market_store, codes, START, END, tmp_path)
    assert_frame_equal(frame, loader.load(model_market_store, codes, START, END))
    empty, _ = load_cached(loader, model_market_store, codes, "2030-01-01", "2030-06-30", tmp_path)
    assert empty.height == 0
    assert empty.columns == ["datetime", "instrument", "feature/RANK", "feature/RET"]
