from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from alphalab.config import get_settings
from alphalab.data import (
    BASE_FIELDS,
    DATETIME_DTYPE,
    VALUE_DTYPE,
    ParquetMarketStore,
    SimulationConfig,
    open_market_store,
    simulated_store,
)
from alphalab.data.storage import _registry
from alphalab.exceptions import ConfigError, DataError, NotFoundError, StoreError

PRICES = ["close", "open", "high", "low", "volume", "vwap"]


@pytest.fixture(scope="module", params=["parquet", "qlib"])
def any_store(request, small_market_store, tmp_path_factory):
    """The small market through each backend: every backend must pass the same tests."""
    if request.param == "parquet":
        return small_market_store
    from alphalab.data import QlibBinMarketStore, write_qlib_dir

    folder = write_qlib_dir(small_market_store, tmp_path_factory.mktemp("qlib") / "data")
    return QlibBinMarketStore(folder)


def _all_codes(store) -> list[str]:
    return store.listing().get_column("instrument").to_list()


def test_read_schema_and_order(any_store) -> None:
    frame = any_store.read(["$close", "volume"], _all_codes(any_store))
    assert frame.columns == ["datetime", "instrument", "close", "volume"]
    assert frame.schema["datetime"] == DATETIME_DTYPE
    assert frame.schema["instrument"] == pl.String
    assert frame.schema["close"] == VALUE_DTYPE
    assert frame.equals(frame.sort("instrument", "datetime"))
    assert not frame.select(pl.struct("instrument", "datetime").is_duplicated().any()).item()
    # Missing values are nulls, never NaN.
    assert frame.select(pl.col("close").is_nan().sum()).item() == 0
    assert set(BASE_FIELDS) <= set(any_store.fields())


def test_rows_cover_listing_spans_with_null_suspensions(any_store) -> None:
    store = any_store
    cal = store.calendar_array()
    frame = store.read(["close", "open", "volume"], _all_codes(store))
    spans = frame.group_by("instrument").agg(
        pl.col("datetime").min().alias("first"),
        pl.col("datetime").max().alias("last"),
        pl.len().alias("rows"),
    )
    joined = spans.join(store.listing(), on="instrument")
    assert joined.filter(pl.col("first") != pl.col("start")).height == 0
    assert joined.filter(pl.col("last") != pl.col("end")).height == 0
    # One row per trading day inside the span.
    for row in joined.iter_rows(named=True):
        a, b = np.searchsorted(cal, np.array([row["start"], row["end"]], dtype="datetime64[ns]"))
        assert row["rows"] == b - a + 1
    # Listings and delistings happen mid-sample.
    listing = store.listing()
    assert listing.filter(pl.col("start") > pl.lit(cal[0])).height > 0
    assert listing.filter(pl.col("end") < pl.lit(cal[-1])).height > 0
    # Suspended days: rows whose every field is null.
    suspended = frame.filter(pl.col("close").is_null())
    assert suspended.height > 0
    assert suspended.select(pl.col("open").is_null().all(), pl.col("volume").is_null().all()).row(
        0
    ) == (True, True)


def test_window_history_and_future(any_store) -> None:
    store = any_store
    cal = store.calendar(None, None)
    full = store.listing().filter(
        (pl.col("start") == pl.lit(cal[0])) & (pl.col("end") == pl.lit(cal[-1]))
    )
    code = full.get_column("instrument")[1]  # a stock listed over the whole calendar
    base = store.read(["close"], [code], "2020-03-07", "2020-03-20")  # starts on a Saturday
    assert base.get_column("datetime")[0] >= pd.Timestamp("2020-03-09")
    wide = store.read(["close"], [code], "2020-03-07", "2020-03-20", history=5, future=2)
    assert wide.height == base.height + 7
    first = cal.index(pd.Timestamp(base.get_column("datetime")[0]))
    assert pd.Timestamp(wide.get_column("datetime")[0]) == cal[first - 5]
    assert wide.slice(5, base.height).equals(base)
    # History stops at the start of the calendar; future at its end.
    edge = store.read(["close"], [code], None, cal[2], history=50)
    assert pd.Timestamp(edge.get_column("datetime")[0]) == cal[0]
    tail = store.read(["close"], [code], cal[-3], None, future=50)
    assert pd.Timestamp(tail.get_column("datetime")[-1]) == cal[-1]
    # A window with no trading day gives an empty frame with the right schema.
    empty = store.read(["close"], [code], "2020-03-07", "2020-03-08")
    assert empty.height == 0 and empty.columns == ["datetime", "instrument", "close"]


def test_read_errors_are_specific(any_store) -> None:
    store = any_store
    with pytest.raises(NotFoundError, match=r"Unknown field\(s\) \$nope .*available: \$open"):
        store.read(["$close", "$nope"], ["SH600000"])
    with pytest.raises(NotFoundError, match=r"unknown instrument.*XX000001"):
        store.read(["close"], ["SH600000", "XX000001"])
    with pytest.raises(NotFoundError, match=r"Unknown universe 'csi500'.*all, csi100, csi300"):
        store.read(["close"], "csi500")
    with pytest.raises(NotFoundError, match=r"'SH000300' is an instrument: pass a list"):
        store.read(["close"], "SH000300")
    with pytest.raises(DataError, match="start '2020-05-01' is after the end '2020-01-01'"):
        store.read(["close"], ["SH600000"], "2020-05-01", "2020-01-01")
    with pytest.raises(DataError, match="'someday' is not a date"):
        store.read(["close"], ["SH600000"], "someday")
    with pytest.raises(DataError, match="history and future must be >= 0"):
        store.read(["close"], ["SH600000"], history=-1)
    with pytest.raises(DataError, match="Duplicate fields"):
        store.read(["close", "$close"], ["SH600000"])


def test_universes_and_membership(any_store) -> None:
    store = any_store
    assert store.universes() == ["all", "csi100", "csi300"]
    spans = store.membership("csi300")
    assert spans.columns == ["instrument", "start", "end"]
    assert spans.filter(pl.col("start") > pl.col("end")).height == 0
    # At each day a universe holds at most its size; csi100 members are csi300 members.
    for day in store.calendar("2019-03-01", "2020-12-31")[::40]:
        members = {
            name: set(store.instruments(name, day, day)) for name in ("csi300", "csi100", "all")
        }
        assert 0 < len(members["csi300"]) <= 20
        assert 0 < len(members["csi100"]) <= 10
        assert members["csi100"] <= members["csi300"] <= members["all"]
    # instruments() returns members at any time in the window.
    whole = set(store.instruments("csi100"))
    assert whole == set(spans.filter(pl.lit(True)).get_column("instrument")) & whole
    assert len(whole) > 10  # membership changes over time
    # The benchmark is readable but in no universe.
    assert "SH000300" in _all_codes(store)
    assert "SH000300" not in store.instruments("all")
    bench = store.read(["close"], ["SH000300"])
    assert bench.height == len(store.calendar()) and bench.get_column("close").null_count() == 0


def test_read_by_universe_name(any_store) -> None:
    store = any_store
    frame = store.read(["close"], "csi100", "2020-01-01", "2020-02-28")
    assert set(frame.get_column("instrument")) == set(
        store.instruments("csi100", "2020-01-01", "2020-02-28")
    )


def test_fingerprint_is_stable_and_sensitive(small_market_store) -> None:
    store = small_market_store
    args = (["close", "volume"], "csi300", "2020-01-01", "2020-06-30")
    digest = store.fingerprint(*args)
    assert digest == store.fingerprint(*args)
    assert digest != store.fingerprint(["close"], "csi300", "2020-01-01", "2020-06-30")
    assert digest != store.fingerprint(*args, history=1)
    # Another process (fresh hash seeds, fresh caches) computes the same digest.
    code = (
        "from alphalab.data import ParquetMarketStore;"
        f"print(ParquetMarketStore({store.uri!r}).fingerprint(*{args!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == digest


def test_open_market_store_dispatch(small_market_store, tmp_path: Path) -> None:
    assert isinstance(open_market_store(small_market_store.uri), ParquetMarketStore)
    assert isinstance(open_market_store(f"file://{small_market_store.uri}"), ParquetMarketStore)
    with pytest.raises(NotFoundError, match="does not exist; create it with 'alphalab data"):
        open_market_store(tmp_path / "missing")
    (tmp_path / "other").mkdir()
    with pytest.raises(StoreError, match="neither an alphalab market store"):
        open_market_store(tmp_path / "other")
    with pytest.raises(StoreError, match="Unsupported market data URI scheme 's3'"):
        open_market_store("s3://bucket/data")
    with pytest.raises(ConfigError, match="Unknown simulated market parameter 'sizes'"):
        open_market_store("simulated://?sizes=3")


def test_simulated_uri_is_generated_once_into_the_cache(tmp_path: Path) -> None:
    settings = get_settings(cache_dir=str(tmp_path / "cache"))
    uri = "simulated://?seed=3&n_instruments=6&start=2020-01-01&end=2020-06-30&universes=top:3"
    store = open_market_store(uri, settings=settings)
    assert isinstance(store, ParquetMarketStore)
    assert Path(store.uri).parent == tmp_path / "cache" / "simulated"
    assert store.universes() == ["all", "top"]
    again = open_market_store(uri, settings=settings)
    assert again.version_dir == store.version_dir  # reused, not regenerated


def test_no_provider_means_the_simulated_market(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = SimulationConfig(n_instruments=5, start="2020-01-01", end="2020-04-30")
    monkeypatch.setattr(_registry, "SimulationConfig", lambda: small)
    settings = get_settings(cache_dir=str(tmp_path / "c"))
    store = open_market_store(None, settings=settings)
    assert store.uri == str(tmp_path / "c" / "simulated" / small.digest())
    assert simulated_store(small, cache_dir=tmp_path / "c").version_dir == store.version_dir


def test_writer_rejects_inconsistent_data_and_fills_missing_days(tmp_path: Path) -> None:
    from alphalab.data import write_parquet_store

    cal = np.array(["2021-01-04", "2021-01-05", "2021-01-06"], dtype="datetime64[ns]")
    listing = pl.DataFrame({"instrument": ["A"], "start": cal[:1], "end": cal[1:2]})
    universes = listing.with_columns(universe=pl.lit("all"))
    bars = pl.DataFrame({"instrument": ["A", "A"], "datetime": cal[[0, 2]], "close": [1.0, 2.0]})

    def write(frame: pl.DataFrame) -> ParquetMarketStore:
        return write_parquet_store(
            tmp_path / "s",
            calendar=cal,
            listing=listing,
            universes=universes,
            bars=frame,
            fields=["close"],
        )

    with pytest.raises(
        DataError, match=r"outside their instrument's listing span.*A on 2021-01-06"
    ):
        write(bars)
    with pytest.raises(DataError, match="no listing span: B"):
        write(bars.with_columns(instrument=pl.lit("B")))
    with pytest.raises(DataError, match="Duplicate bar for A on 2021-01-04"):
        write(pl.concat([bars.head(1), bars.head(1)]))
    assert not (tmp_path / "s" / "alphalab-store.json").exists()
    store = write(bars.head(1).with_columns(pl.col("close").fill_null(float("nan"))))
    frame = store.read(["close"], ["A"])
    assert frame.get_column("close").to_list() == [1.0, None]


def test_window_reads_match_a_naive_reference(any_store) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    store = any_store
    cal = store.calendar_array()
    codes = _all_codes(store)
    full = store.read(["close"], codes)
    first, last = pd.Timestamp(cal[0]), pd.Timestamp(cal[-1])

    @settings(max_examples=40, deadline=None)
    @given(
        start=st.integers(-10, 800),
        length=st.integers(0, 200),
        history=st.integers(0, 30),
        future=st.integers(0, 30),
        picks=st.lists(st.sampled_from(codes), min_size=1, max_size=5),
    )
    def check(start: int, length: int, history: int, future: int, picks: list[str]) -> None:
        lo_day = first + pd.Timedelta(days=start)
        hi_day = lo_day + pd.Timedelta(days=length)
        got = store.read(["close"], picks, lo_day, hi_day, history=history, future=future)
        inside = np.flatnonzero((cal >= lo_day.to_datetime64()) & (cal <= hi_day.to_datetime64()))
        if inside.size == 0:
            assert got.height == 0
            return
        a = max(0, int(inside[0]) - history)
        b = min(cal.size - 1, int(inside[-1]) + future)
        expected = full.filter(
            pl.col("instrument").is_in(picks)
            & pl.col("datetime").is_between(pl.lit(cal[a]), pl.lit(cal[b]))
        )
        assert got.equals(expected)
        assert lo_day <= last or got.height == 0

    check()


def test_small_market_fixture_sets_the_provider(small_market) -> None:
    assert open_market_store().uri == small_market.uri


def test_concurrent_first_use_generates_the_simulated_market_once(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    config = SimulationConfig(n_instruments=5, start="2020-01-01", end="2020-06-30", seed=9)
    with ThreadPoolExecutor(3) as pool:
        stores = list(pool.map(lambda _: simulated_store(config, cache_dir=tmp_path), range(3)))
    assert len({s.version_dir for s in stores}) == 1
    folder = tmp_path / "simulated" / config.digest()
    assert len([p for p in folder.iterdir() if p.name.startswith("v-")]) == 1
