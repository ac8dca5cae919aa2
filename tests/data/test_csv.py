from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from alphalab.data import BASE_FIELDS, CsvOptions, ParquetMarketStore, import_csv
from alphalab.exceptions import DataError, NotFoundError

YAHOO_HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"


def _yahoo(folder: Path, name: str, rows: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"{name}.csv"
    file.write_text(YAHOO_HEADER + "".join(r + "\n" for r in rows))
    return file


@pytest.fixture
def yahoo_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "csv"
    _yahoo(
        folder,
        "aapl",
        [
            "2021-01-04,10,11,9,10.5,5.25,1000",
            "2021-01-05,10.5,12,10,11,5.5,2000",
            "2021-01-06,11,11.5,10.5,11,5.5,1500",
            "2021-01-08,11,12,10,12,6,1200",  # 2021-01-07 missing: a suspended day
        ],
    )
    _yahoo(
        folder,
        "msft",
        [
            "2021-01-05,20,21,19,20,20,300",
            "2021-01-06,20,22,20,22,22,400",
            "2021-01-07,22,23,21,21,21,500",
        ],
    )
    return folder


def test_yahoo_folder_round_trip(yahoo_dir: Path, tmp_path: Path) -> None:
    store = import_csv(yahoo_dir, tmp_path / "store")
    assert [str(d.date()) for d in store.calendar()] == [
        "2021-01-04",
        "2021-01-05",
        "2021-01-06",
        "2021-01-07",
        "2021-01-08",
    ]
    assert store.fields() == list(BASE_FIELDS)
    assert store.instruments() == ["AAPL", "MSFT"]
    frame = store.read(store.fields(), ["AAPL", "MSFT"])
    aapl = frame.filter(pl.col("instrument") == "AAPL")
    assert aapl.height == 5  # listed 01-04..01-08, one suspended day
    suspended = aapl.filter(pl.col("datetime") == pl.datetime(2021, 1, 7, time_unit="ns"))
    assert suspended.select(pl.exclude("datetime", "instrument").is_null().all()).row(0) == (
        (True,) * len(BASE_FIELDS)
    )
    traded = aapl.drop_nulls("close")
    # Qlib's convention: factor = adjusted / raw close; prices adjusted, volume divided.
    np.testing.assert_allclose(traded.get_column("factor"), [0.5, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(traded.get_column("close"), [5.25, 5.5, 5.5, 6.0])
    np.testing.assert_allclose(traded.get_column("open"), [5.0, 5.25, 5.5, 5.5])
    np.testing.assert_allclose(traded.get_column("volume"), [2000, 4000, 3000, 2400])
    np.testing.assert_allclose(
        traded.get_column("vwap"), (traded["high"] + traded["low"] + 2 * traded["close"]) / 4
    )
    change = traded.get_column("change").to_list()
    assert change[0] is None
    np.testing.assert_allclose(change[1:], [5.5 / 5.25 - 1, 0.0, 6.0 / 5.5 - 1], rtol=1e-6)
    msft = frame.filter(pl.col("instrument") == "MSFT")
    assert msft.get_column("datetime").dt.day().to_list() == [5, 6, 7]
    assert store.membership("all").sort("instrument").get_column("instrument").to_list() == [
        "AAPL",
        "MSFT",
    ]


def test_simulated_store_survives_a_csv_round_trip(small_market_store, tmp_path: Path) -> None:
    store = small_market_store
    codes = store.listing().get_column("instrument").to_list()
    frame = store.read(store.fields(), codes)
    folder = tmp_path / "export"
    folder.mkdir()
    for (code,), rows in frame.group_by("instrument"):
        rows.drop("instrument").with_columns(pl.col("datetime").dt.date()).write_csv(
            folder / f"{code}.csv"
        )
    imported = import_csv(folder, tmp_path / "store", CsvOptions(date_column="datetime"))
    assert np.array_equal(imported.calendar_array(), store.calendar_array())
    assert imported.listing().equals(store.listing())
    assert imported.read(store.fields(), codes).equals(frame)


def test_options_symbol_column_date_format_and_renames(tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "prices.txt").write_text(
        "code;day;o;h;l;c;vol;turnover\n"
        "sh600000;20210104;1;2;0.5;1.5;10;15\n"
        "sh600000;20210105;1.5;2;1;2;20;40\n"
        "sz000001;20210105;3;4;2;3;30;90\n"
    )
    options = CsvOptions(
        date_column="day",
        symbol_column="code",
        date_format="%Y%m%d",
        columns={"o": "open", "h": "high", "l": "low", "c": "close", "vol": "volume"},
        pattern="*.txt",
        delimiter=";",
    )
    store = import_csv(folder, tmp_path / "store", options)
    assert store.instruments() == ["SH600000", "SZ000001"]
    assert store.fields() == [*BASE_FIELDS, "turnover"]
    frame = store.read(["close", "turnover", "factor"], ["SH600000", "SZ000001"])
    assert frame.get_column("turnover").to_list() == [15.0, 40.0, 90.0]
    assert frame.get_column("factor").to_list() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "2021-01-05,10,11,9,abc,10,100",
            r"bad\.csv, line 3: column 'close' has the non-numeric value 'abc'",
        ),
        ("2021-13-05,10,11,9,10,10,100", r"bad\.csv, line 3: '2021-13-05' is not a date"),
        (
            "2021-01-04,10,11,9,10,10,100",
            r"bad\.csv, lines 2 and 3: two rows for BAD on 2021-01-04",
        ),
        ("2021-01-05,10,11,9,10,10", r"bad\.csv: line 3 has 6 fields where the header has 7"),
    ],
)
def test_malformed_csv_is_reported_by_file_and_line_and_nothing_changes(
    yahoo_dir: Path, tmp_path: Path, row: str, message: str
) -> None:
    dest = tmp_path / "store"
    before = import_csv(yahoo_dir, dest)
    digest = before.fingerprint(before.fields(), "all")
    _yahoo(yahoo_dir, "bad", ["2021-01-04,10,11,9,10,10,100", row, "2021-01-06,10,11,9,10,10,100"])
    with pytest.raises(DataError, match=message):
        import_csv(yahoo_dir, dest)
    after = ParquetMarketStore(dest)
    assert after.version_dir == before.version_dir
    assert after.fingerprint(after.fields(), "all") == digest
    assert not [p for p in dest.iterdir() if p.name.startswith(".tmp")]


def test_missing_columns_and_folders(tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "x.csv").write_text("Date,Close\n2021-01-04,1\n")
    with pytest.raises(DataError, match=r"x\.csv: missing column\(s\) open, high, low, volume"):
        import_csv(folder, tmp_path / "store")
    assert not (tmp_path / "store").exists() or not any(
        p.name.startswith("v-") for p in (tmp_path / "store").iterdir()
    )
    (folder / "x.csv").write_text("When,Close\n2021-01-04,1\n")
    with pytest.raises(DataError, match=r"x\.csv: no date column 'date' \(columns: when, close\)"):
        import_csv(folder, tmp_path / "store")
    with pytest.raises(NotFoundError, match=r"No file matches '\*\.csv'"):
        (tmp_path / "empty").mkdir()
        import_csv(tmp_path / "empty", tmp_path / "other")
    with pytest.raises(NotFoundError, match=r"The CSV folder .* does not exist"):
        import_csv(tmp_path / "nowhere", tmp_path / "other")


def test_non_utf8_file_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "x.csv").write_bytes(YAHOO_HEADER.encode() + b"2021-01-04,1,2,0.5,1\xff,1,10\n")
    with pytest.raises(DataError, match=r"x\.csv: not UTF-8 text \(byte \d+\)"):
        import_csv(folder, tmp_path / "store")
