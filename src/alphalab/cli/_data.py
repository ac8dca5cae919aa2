"""``alphalab data``: generate, import, export and describe market data."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from alphalab.cli._console import console

if TYPE_CHECKING:
    from alphalab.data import MarketStore

app = typer.Typer(
    help="Market data: the simulated market, CSV and Qlib imports, info.", no_args_is_help=True
)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.1f} GB"


def _summary(store: MarketStore, title: str) -> Table:
    cal = store.calendar_array()
    table = Table(title=title, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("location", store.uri)
    table.add_row("kind", store.kind)
    table.add_row("calendar", f"{str(cal[0])[:10]} .. {str(cal[-1])[:10]} ({cal.size} days)")
    table.add_row("instruments", str(store.listing().height))
    for universe in store.universes():
        members = store.membership(universe).get_column("instrument").n_unique()
        table.add_row(f"universe {universe}", f"{members} instruments")
    table.add_row("fields", ", ".join(store.fields()))
    table.add_row("size on disk", _human(store.size_on_disk()))
    return table


@app.command("generate")
def generate(
    dest: Annotated[
        Path | None,
        typer.Argument(help="Store folder to write (default: the simulated-market cache)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    instruments: Annotated[int, typer.Option(help="Number of stocks.")] = 400,
    start: Annotated[str, typer.Option(help="First calendar day.")] = "2015-01-01",
    end: Annotated[str, typer.Option(help="Last calendar day.")] = "2022-12-31",
    signal_strength: Annotated[
        float, typer.Option(help="Scale of the planted signal (0 removes it).")
    ] = 1.0,
    universe: Annotated[
        list[str] | None,
        typer.Option(
            help="A universe of the largest stocks, NAME=SIZE (repeatable).",
            show_default="csi300=300, csi100=100",
        ),
    ] = None,
) -> None:
    """Generate the deterministic simulated market as a Parquet store."""
    from alphalab.config import get_settings
    from alphalab.data import SimulationConfig, simulated_store, write_simulated_store
    from alphalab.exceptions import ConfigError

    options: dict[str, Any] = {}
    if universe:
        sizes: dict[str, int] = {}
        for item in universe:
            name, sep, size = item.partition("=")
            if not sep or not name.strip() or not size.strip().isdigit():
                raise ConfigError(f"--universe expects NAME=SIZE, e.g. csi300=300; got {item!r}")
            sizes[name.strip()] = int(size)
        options["universes"] = sizes
    config = SimulationConfig(
        seed=seed,
        n_instruments=instruments,
        start=start,
        end=end,
        signal_strength=signal_strength,
        **options,
    )
    began = time.perf_counter()
    if dest is None:
        store: MarketStore = simulated_store(config, cache_dir=get_settings().cache_dir)
    else:
        store = write_simulated_store(dest, config)
    seconds = time.perf_counter() - began
    console.print(_summary(store, f"simulated market ({seconds:.1f} s)"))


@app.command("import-csv")
def import_csv_command(
    src: Annotated[Path, typer.Argument(help="Folder of CSV files, one per instrument.")],
    dest: Annotated[Path, typer.Argument(help="Store folder to write.")],
    date_column: Annotated[str, typer.Option(help="Column holding the date.")] = "date",
    symbol_column: Annotated[
        str | None,
        typer.Option(help="Column holding the instrument code (default: the file name)."),
    ] = None,
    date_format: Annotated[
        str | None, typer.Option(help="strftime format of the dates, e.g. %Y%m%d.")
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(help="Rename a column to a field, SOURCE=FIELD (repeatable)."),
    ] = None,
    adjusted_close_column: Annotated[
        str, typer.Option(help="Column of the adjusted close ('' for none).")
    ] = "adj_close",
    pattern: Annotated[str, typer.Option(help="Glob of the files to read.")] = "*.csv",
    delimiter: Annotated[str, typer.Option(help="Field separator.")] = ",",
) -> None:
    """Import per-instrument CSV files (Yahoo-style by default) into a Parquet store."""
    from alphalab.data import CsvOptions, import_csv
    from alphalab.exceptions import ConfigError

    renames: dict[str, str] = {}
    for item in column or []:
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ConfigError(f"--column expects SOURCE=FIELD; got {item!r}")
        renames[source.strip()] = target.strip().lstrip("$")
    options = CsvOptions(
        date_column=date_column,
        symbol_column=symbol_column,
        date_format=date_format,
        columns=renames,
        adjusted_close_column=adjusted_close_column or None,
        pattern=pattern,
        delimiter=delimiter,
    )
    store = import_csv(src, dest, options)
    console.print(_summary(store, f"imported {src}"))


@app.command("import-qlib")
def import_qlib_command(
    src: Annotated[
        Path, typer.Argument(help="Qlib data directory (e.g. ~/.qlib/qlib_data/cn_data).")
    ],
    dest: Annotated[Path, typer.Argument(help="Store folder to write.")],
    field: Annotated[
        list[str] | None, typer.Option(help="Field to copy (repeatable; default: all).")
    ] = None,
) -> None:
    """Import a Qlib binary data directory into a Parquet store."""
    from alphalab.data import import_qlib

    store = import_qlib(src, dest, fields=field or None)
    console.print(_summary(store, f"imported {src}"))


@app.command("export-qlib")
def export_qlib_command(
    dest: Annotated[Path, typer.Argument(help="New folder for the Qlib data directory.")],
    source: Annotated[
        str | None,
        typer.Option("--from", help="Market data to export (default: the provider_uri setting)."),
    ] = None,
) -> None:
    """Write market data in Qlib's binary layout (readable by Qlib and by alphalab)."""
    from alphalab.data import open_market_store, write_qlib_dir

    store = open_market_store(source)
    path = write_qlib_dir(store, dest)
    console.print(f"Wrote a Qlib data directory to {path}")


@app.command("info")
def info(
    uri: Annotated[
        str | None,
        typer.Argument(help="Market data location (default: the provider_uri setting)."),
    ] = None,
) -> None:
    """Describe market data: calendar range, instruments, universes, fields, size on disk."""
    from alphalab.data import open_market_store

    store = open_market_store(uri)
    console.print(_summary(store, "market data"))
