"""Market data stores: the Parquet store, Qlib directories read in place, the simulated market."""

from alphalab.data.storage._base import (
    ALL_UNIVERSE,
    BASE_FIELDS,
    DATETIME_DTYPE,
    VALUE_DTYPE,
    MarketStore,
    Window,
    empty_bars,
    frame_fingerprint,
    strip_field,
    to_datetime64,
)
from alphalab.data.storage._import import CsvOptions, import_csv, import_qlib
from alphalab.data.storage._parquet import (
    ParquetMarketStore,
    is_parquet_store,
    write_parquet_store,
)
from alphalab.data.storage._qlib_bin import (
    QlibBinMarketStore,
    is_qlib_dir,
    read_qlib_calendar,
    read_qlib_instruments,
    write_qlib_dir,
)
from alphalab.data.storage._registry import (
    SUPPORTED_SCHEMES,
    open_market_store,
    simulated_store,
    simulation_config_from_uri,
    write_simulated_store,
)
from alphalab.data.storage._simulated import (
    SIMULATED_FIELDS,
    SimulatedMarket,
    SimulationConfig,
    simulate_market,
)

__all__ = [
    "ALL_UNIVERSE",
    "BASE_FIELDS",
    "DATETIME_DTYPE",
    "SIMULATED_FIELDS",
    "SUPPORTED_SCHEMES",
    "VALUE_DTYPE",
    "CsvOptions",
    "MarketStore",
    "ParquetMarketStore",
    "QlibBinMarketStore",
    "SimulatedMarket",
    "SimulationConfig",
    "Window",
    "empty_bars",
    "frame_fingerprint",
    "import_csv",
    "import_qlib",
    "is_parquet_store",
    "is_qlib_dir",
    "open_market_store",
    "read_qlib_calendar",
    "read_qlib_instruments",
    "simulate_market",
    "simulated_store",
    "simulation_config_from_uri",
    "strip_field",
    "to_datetime64",
    "write_parquet_store",
    "write_qlib_dir",
    "write_simulated_store",
]
