"""Open a market store from a provider URI: the one place that maps locations to backends."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from filelock import FileLock

from alphalab.config import Settings, get_settings, uri_scheme
from alphalab.data.storage._base import MarketStore
from alphalab.data.storage._parquet import ParquetMarketStore, is_parquet_store, write_parquet_store
from alphalab.data.storage._qlib_bin import QlibBinMarketStore, is_qlib_dir
from alphalab.data.storage._simulated import SimulationConfig, simulate_market
from alphalab.exceptions import ConfigError, NotFoundError, StoreError
from alphalab.logging import get_logger

logger = get_logger(__name__)

#: URI schemes :func:`open_market_store` understands (a plain folder path needs none).
SUPPORTED_SCHEMES = ("file", "simulated")

_INT_PARAMS = ("seed", "n_instruments", "n_sectors")
_FLOAT_PARAMS = (
    "listing_fraction",
    "delisting_fraction",
    "suspension_rate",
    "signal_strength",
    "signal_persistence",
    "limit",
)


def simulation_config_from_uri(uri: str) -> SimulationConfig:
    """Parse ``simulated://?seed=1&n_instruments=50&start=2018-01-01`` into a config.

    ``universes`` is written ``csi300:300,csi100:100``.

    Raises:
        ConfigError: for an unknown parameter or a malformed value.
    """
    params: dict[str, Any] = {}
    for key, value in parse_qsl(urlsplit(uri).query, keep_blank_values=True):
        try:
            if key in _INT_PARAMS:
                params[key] = int(value)
            elif key in _FLOAT_PARAMS:
                params[key] = float(value)
            elif key in ("start", "end", "benchmark"):
                params[key] = value
            elif key == "universes":
                pairs = [item.split(":") for item in value.split(",") if item]
                params[key] = {name: int(size) for name, size in pairs}
            else:
                known = ", ".join(
                    ("start", "end", "benchmark", "universes", *_INT_PARAMS, *_FLOAT_PARAMS)
                )
                raise ConfigError(
                    f"Unknown simulated market parameter {key!r} in {uri!r}; known: {known}"
                )
        except ValueError as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(f"Bad value {value!r} for {key!r} in {uri!r}: {e}") from None
    return SimulationConfig(**params)


def simulated_store(
    config: SimulationConfig | None = None, *, cache_dir: str | os.PathLike[str]
) -> ParquetMarketStore:
    """Return the simulated market of ``config``, generating it into ``cache_dir`` once.

    The store lives in ``<cache_dir>/simulated/<config digest>``; concurrent callers wait for
    one generation instead of repeating it.
    """
    config = config or SimulationConfig()
    folder = Path(cache_dir).expanduser() / "simulated"
    target = folder / config.digest()
    if is_parquet_store(target):
        return ParquetMarketStore(target)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / f"{config.digest()}.lock")):
        if is_parquet_store(target):
            return ParquetMarketStore(target)
        logger.info("Generating the simulated market into %s", target)
        return write_simulated_store(target, config)


def write_simulated_store(
    dest: str | os.PathLike[str], config: SimulationConfig | None = None
) -> ParquetMarketStore:
    """Generate the simulated market of ``config`` and write it as a Parquet store at ``dest``."""
    config = config or SimulationConfig()
    market = simulate_market(config)
    return write_parquet_store(
        dest,
        calendar=market.calendar,
        listing=market.listing,
        universes=market.universes,
        bars=market.bars,
        fields=market.fields,
        source=f"simulated market {config.to_dict()}",
    )


def open_market_store(
    provider_uri: str | os.PathLike[str] | None = None, *, settings: Settings | None = None
) -> MarketStore:
    """Open the market data at ``provider_uri`` (default: the ``provider_uri`` setting).

    * None (nothing configured): the simulated market, generated once into
      ``settings.cache_dir``;
    * ``simulated://?seed=..&n_instruments=..``: a simulated market with those parameters;
    * a folder (or ``file://`` URI) holding an alphalab Parquet store, or a Qlib data
      directory (read in place).

    Raises:
        NotFoundError: when the folder does not exist.
        StoreError: when the location holds neither kind of store, or has an unknown scheme.
    """
    if provider_uri is None:
        settings = settings or get_settings()
        provider_uri = settings.provider_uri
    if provider_uri is None:
        settings = settings or get_settings()
        return simulated_store(SimulationConfig(), cache_dir=settings.cache_dir)
    text = os.fspath(provider_uri)
    scheme = uri_scheme(text)
    if scheme == "simulated":
        settings = settings or get_settings()
        return simulated_store(simulation_config_from_uri(text), cache_dir=settings.cache_dir)
    if scheme == "file":
        text = urlsplit(text).path
    elif scheme:
        raise StoreError(
            f"Unsupported market data URI scheme {scheme!r} in {text!r}; use a folder path or "
            f"one of: {', '.join(s + '://' for s in SUPPORTED_SCHEMES)}"
        )
    path = Path(text).expanduser()
    if not path.exists():
        raise NotFoundError(
            f"The market data folder {path} does not exist; create it with "
            "'alphalab data generate', 'alphalab data import-csv' or "
            "'alphalab data import-qlib', or unset provider_uri to use the simulated market"
        )
    if is_parquet_store(path):
        return ParquetMarketStore(path)
    if is_qlib_dir(path):
        return QlibBinMarketStore(path)
    raise StoreError(
        f"{path} holds neither an alphalab market store (alphalab-store.json) nor a Qlib data "
        "directory (calendars/day.txt and features/)"
    )
