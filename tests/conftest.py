"""Shared fixtures: isolated settings per test, the PostgreSQL URL, a seed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import alphalab.config

PG_URL_ENV = "ALPHALAB_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run each test in its own folder with no ALPHALAB_* variables and no init() values."""
    for var in alphalab.config.ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    alphalab.config.reset()
    yield tmp_path
    alphalab.config.reset()


@pytest.fixture
def seed() -> int:
    """The seed of every randomised test, so failures reproduce."""
    return 20261123


def _pg_reachable(url: str) -> str | None:
    """Return None if PostgreSQL answers at ``url``, else the reason it does not."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as e:  # any failure means "not usable here"
        return f"{type(e).__name__}: {e}"
    return None


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of the test PostgreSQL server; fails (not skips) under CI=true when it is down."""
    url = os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)
    reason = _pg_reachable(url)
    if reason is not None:
        message = f"PostgreSQL at {url} is unreachable ({reason}); set {PG_URL_ENV}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


# ---------------------------------------------------------------------------- market data
SMALL_MARKET = {
    "seed": 7,
    "n_instruments": 40,
    "start": "2019-01-01",
    "end": "2020-12-31",
    "universes": {"csi300": 20, "csi100": 10},
    "listing_fraction": 0.3,
    "delisting_fraction": 0.2,
    "suspension_rate": 0.01,
}


@pytest.fixture(scope="session")
def small_market_store(tmp_path_factory: pytest.TempPathFactory):
    """A tiny deterministic simulated market (40 stocks x 2 years) as a Parquet store.

    Session-scoped and read-only: tests that modify data must write their own store.
    """
    from alphalab.data import SimulationConfig, write_simulated_store

    folder = tmp_path_factory.mktemp("small-market") / "store"
    return write_simulated_store(folder, SimulationConfig(**SMALL_MARKET))


@pytest.fixture
def small_market(small_market_store):
    """Point the ``provider_uri`` setting at the small market for one test; return the store."""
    alphalab.config.init(provider_uri=small_market_store.uri)
    return small_market_store
