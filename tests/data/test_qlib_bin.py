from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from alphalab.data import (
    ParquetMarketStore,
    QlibBinMarketStore,
    import_qlib,
    open_market_store,
    write_qlib_dir,
)
from alphalab.exceptions import DataError, StoreError


@pytest.fixture(scope="module")
def qlib_dir(small_market_store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_qlib_dir(small_market_store, tmp_path_factory.mktemp("qlib") / "cn_data")


def _everything(store) -> pl.DataFrame:
    return store.read(store.fields(), store.listing().get_column("instrument").to_list())


def test_layout_is_qlibs(qlib_dir: Path, small_market_store) -> None:
    lines = (qlib_dir / "calendars" / "day.txt").read_text().splitlines()
    assert len(lines) == len(small_market_store.calendar()) and lines[0] == "2019-01-01"
    assert sorted(p.name for p in (qlib_dir / "instruments").iterdir()) == [
        "all.txt",
        "csi100.txt",
        "csi300.txt",
    ]
    symbol, start, end = (
        (qlib_dir / "instruments" / "all.txt").read_text().splitlines()[0].split("\t")
    )
    assert symbol.startswith("S") and start <= end
    raw = np.fromfile(qlib_dir / "features" / "sh000300" / "close.day.bin", dtype="<f4")
    assert raw[0] == 0 and raw.size == len(lines) + 1
    bench = small_market_store.read(["close"], ["SH000300"]).get_column("close").to_numpy()
    np.testing.assert_array_equal(raw[1:], bench)


def test_in_place_reading_and_import_give_identical_frames(
    qlib_dir: Path, small_market_store, tmp_path: Path
) -> None:
    in_place = open_market_store(qlib_dir)
    assert isinstance(in_place, QlibBinMarketStore)
    imported = import_qlib(qlib_dir, tmp_path / "store")
    expected = _everything(small_market_store)
    for store in (in_place, imported):
        assert store.fields() == small_market_store.fields()
        assert np.array_equal(store.calendar_array(), small_market_store.calendar_array())
        assert store.listing().equals(small_market_store.listing())
        for universe in small_market_store.universes():
            assert store.membership(universe).equals(small_market_store.membership(universe))
        assert _everything(store).equals(expected)
    # Windows with history/future and fingerprints agree too.
    args = (["close", "vwap"], "csi100", "2020-02-03", "2020-05-29")
    frames = [s.read(*args, history=10, future=2) for s in (small_market_store, in_place, imported)]
    assert frames[0].equals(frames[1]) and frames[0].equals(frames[2])
    digests = {s.fingerprint(*args) for s in (small_market_store, in_place, imported)}
    assert len(digests) == 1


def test_missing_field_file_reads_as_nulls(qlib_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "q"
    shutil.copytree(qlib_dir, copy)
    (copy / "features" / "sh000300" / "vwap.day.bin").unlink()
    store = QlibBinMarketStore(copy)
    frame = store.read(["close", "vwap"], ["SH000300"])
    assert frame.get_column("vwap").null_count() == frame.height > 0
    assert frame.get_column("close").null_count() == 0


def test_partial_feature_file_is_placed_by_its_start_index(qlib_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "q"
    shutil.copytree(qlib_dir, copy)
    first_day = (copy / "calendars" / "day.txt").read_text().splitlines()[0]
    rows = [r.split("\t") for r in (copy / "instruments" / "all.txt").read_text().splitlines()]
    stock = next(r[0] for r in rows if r[1] == first_day)
    partial = np.array([5, 1.0, 2.0, 3.0], dtype="<f4")
    partial.tofile(copy / "features" / stock.lower() / "close.day.bin")
    partial.tofile(copy / "features" / "sh000300" / "close.day.bin")
    store = QlibBinMarketStore(copy)
    cal = store.calendar()
    # A stock in all.txt keeps its listed span; days its file lacks are null.
    closes = store.read(["close"], [stock]).get_column("close").to_list()
    assert closes[5:8] == [1.0, 2.0, 3.0]
    assert all(v is None for v in closes[:5] + closes[8:])
    # The benchmark is in no universe file: its span is what its close file covers.
    bench = store.read(["close"], ["SH000300"])
    assert bench.get_column("close").to_list() == [1.0, 2.0, 3.0]
    assert bench.get_column("datetime").to_list() == cal[5:8]


def test_malformed_files_are_named_with_their_line(qlib_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "q"
    shutil.copytree(qlib_dir, copy)
    calendar = copy / "calendars" / "day.txt"
    good_calendar = calendar.read_text()
    lines = good_calendar.splitlines()
    lines[2] = "2019-13-45"
    calendar.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"day\.txt, line 3: '2019-13-45' is not a date"):
        QlibBinMarketStore(copy).calendar()
    calendar.write_text("\n".join([lines[1], lines[0]]) + "\n")
    with pytest.raises(DataError, match=r"day\.txt, line 2: .* is not after the previous day"):
        QlibBinMarketStore(copy).calendar()
    calendar.write_text(good_calendar)

    universe = copy / "instruments" / "csi100.txt"
    rows = universe.read_text().splitlines()
    rows[1] = "SH600001 2019-01-02"
    universe.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"csi100\.txt, line 2: expected SYMBOL<TAB>start<TAB>end"):
        QlibBinMarketStore(copy).membership("csi100")


def test_corrupt_import_leaves_the_previous_store_intact(qlib_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "store"
    first = import_qlib(qlib_dir, dest)
    digest = first.fingerprint(["close"], "all")
    copy = tmp_path / "q"
    shutil.copytree(qlib_dir, copy)
    victim = sorted((copy / "features").iterdir())[-1] / "high.day.bin"
    victim.write_bytes(victim.read_bytes()[:-2])  # not a whole number of float32
    with pytest.raises(DataError, match=rf"{victim.parent.name}/high\.day\.bin is not a Qlib"):
        import_qlib(copy, dest)
    after = ParquetMarketStore(dest)
    assert after.version_dir == first.version_dir
    assert after.fingerprint(["close"], "all") == digest
    assert [p.name for p in dest.iterdir() if p.name.startswith(".tmp")] == []


def test_interrupted_import_leaves_the_previous_store_intact(
    qlib_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "store"
    first = import_qlib(qlib_dir, dest)
    calls = {"n": 0}
    original = pq.ParquetWriter.write_table

    def dies_on_second_chunk(self, table, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed while writing chunk 2")
        return original(self, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", dies_on_second_chunk)
    monkeypatch.setattr("alphalab.data.storage._import._QLIB_BATCH", 5)
    with pytest.raises(KeyboardInterrupt, match="killed while writing chunk 2"):
        import_qlib(qlib_dir, dest)
    assert calls["n"] == 2
    after = ParquetMarketStore(dest)
    assert after.version_dir == first.version_dir
    assert _everything(after).equals(_everything(first))
    assert sorted(p.name for p in dest.iterdir() if not p.name.startswith(".alphalab")) == [
        "alphalab-store.json",
        first.version_dir.name,
    ]


def test_import_is_idempotent(qlib_dir: Path, tmp_path: Path) -> None:
    dest = tmp_path / "store"
    one = _everything(import_qlib(qlib_dir, dest))
    second = import_qlib(qlib_dir, dest)
    assert _everything(second).equals(one)
    versions = [p for p in dest.iterdir() if p.name.startswith("v-")]
    assert len(versions) == 2  # the new one and the previous one (kept for open readers)
    import_qlib(qlib_dir, dest)
    assert len([p for p in dest.iterdir() if p.name.startswith("v-")]) == 2


def test_refusals(qlib_dir: Path, small_market_store, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="Refusing to overwrite"):
        write_qlib_dir(small_market_store, qlib_dir)
    with pytest.raises(StoreError, match="is not a Qlib data directory"):
        QlibBinMarketStore(tmp_path)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match=r"Refusing to write a market store .*notes\.txt"):
        import_qlib(qlib_dir, busy)
    assert sorted(p.name for p in busy.iterdir()) == [".alphalab-store.lock", "notes.txt"]
