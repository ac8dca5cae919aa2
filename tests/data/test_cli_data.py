from __future__ import annotations

from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from alphalab.cli import app
from alphalab.data import ParquetMarketStore, QlibBinMarketStore

runner = CliRunner()
WIDE = {"COLUMNS": "200"}
SMALL = ["--instruments", "6", "--start", "2020-01-01", "--end", "2020-06-30", "--seed", "2"]


def test_generate_export_import_info(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "generate", str(tmp_path / "s"), *SMALL], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "simulated market" in result.output and "csi300" in result.output
    store = ParquetMarketStore(tmp_path / "s")
    assert len(store.instruments()) == 6

    result = runner.invoke(
        app, ["data", "export-qlib", str(tmp_path / "q"), "--from", str(tmp_path / "s")]
    )
    assert result.exit_code == 0, result.output
    assert isinstance(QlibBinMarketStore(tmp_path / "q"), QlibBinMarketStore)

    result = runner.invoke(
        app, ["data", "import-qlib", str(tmp_path / "q"), str(tmp_path / "i"), "--field", "close"]
    )
    assert result.exit_code == 0, result.output
    imported = ParquetMarketStore(tmp_path / "i")
    assert imported.fields() == ["close"]
    codes = store.listing().get_column("instrument").to_list()
    assert imported.read(["close"], codes).equals(store.read(["close"], codes))

    result = runner.invoke(app, ["data", "info", str(tmp_path / "q")], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "2020-01-01 .. 2020-06-30" in result.output
    assert "qlib" in result.output and "open, high, low, close" in result.output


def test_generate_without_destination_fills_the_cache(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "generate", *SMALL], env=WIDE)
    assert result.exit_code == 0, result.output
    cache = tmp_path / "alphalab-runs" / "cache" / "simulated"  # tests run in tmp_path
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1


def test_info_defaults_to_the_provider_setting(tmp_path: Path, monkeypatch) -> None:
    runner.invoke(app, ["data", "generate", str(tmp_path / "s"), *SMALL])
    monkeypatch.setenv("ALPHALAB_PROVIDER_URI", str(tmp_path / "s"))
    result = runner.invoke(app, ["data", "info"], env=WIDE)
    assert result.exit_code == 0, result.output
    # The configured store (not the default simulated market, which starts in 2015).
    assert "2020-01-01 .. 2020-06-30" in result.output and "parquet" in result.output


def test_import_csv_with_options_and_errors(tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "a.csv").write_text("day,o,high,low,close,volume\n20210104,1,2,0.5,1.5,10\n")
    args = ["data", "import-csv", str(folder), str(tmp_path / "s"), "--date-column", "day"]
    result = runner.invoke(app, [*args, "--date-format", "%Y%m%d", "--column", "o=open"], env=WIDE)
    assert result.exit_code == 0, result.output
    frame = ParquetMarketStore(tmp_path / "s").read(["open", "close"], ["A"])
    assert frame.select(pl.col("open", "close")).row(0) == (1.0, 1.5)

    result = runner.invoke(app, [*args, "--column", "o"], env=WIDE)
    assert result.exit_code == 1
    assert "--column expects SOURCE=FIELD; got 'o'" in result.output

    (folder / "b.csv").write_text("day,open,high,low,close,volume\n20210104,1,2,x,1.5,10\n")
    result = runner.invoke(app, [*args, "--date-format", "%Y%m%d", "--column", "o=open"], env=WIDE)
    assert result.exit_code == 1
    assert "b.csv, line 2: column 'low' has the non-numeric value 'x'" in result.output
    assert "Traceback" not in result.output


def test_info_on_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "info", str(tmp_path / "nope")], env=WIDE)
    assert result.exit_code == 1
    assert "does not exist; create it with 'alphalab data generate'" in result.output


def test_generate_with_universes(tmp_path: Path) -> None:
    args = ["data", "generate", str(tmp_path / "s"), *SMALL, "--universe", "top3=3"]
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    assert ParquetMarketStore(tmp_path / "s").universes() == ["all", "top3"]
    result = runner.invoke(app, [*args[:-1], "top3"], env=WIDE)
    assert result.exit_code == 1
    assert "--universe expects NAME=SIZE, e.g. csi300=300; got 'top3'" in result.output
