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


# ----- tracking ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tracking_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty MLflow SQLite store, built once per session (migrations take ~3 s)."""
    from alphalab.tracking import get_client

    path = tmp_path_factory.mktemp("tracking-template") / "mlflow.db"
    get_client(f"sqlite:///{path}")
    return path


def _copy_sqlite(source: Path, target: Path) -> None:
    """Copy a SQLite database consistently (WAL included) with SQLite's backup API."""
    import sqlite3

    target.parent.mkdir(parents=True, exist_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


@pytest.fixture
def tracking_uri(tracking_template_db: Path, isolated_settings: Path) -> Iterator[str]:
    """A fresh SQLite tracking store at the default location (./alphalab-runs/mlflow.db).

    Copied from the session template with SQLite's backup API, so each test starts from an
    empty, migrated store without paying for migrations. ``R`` is reset before and after.
    """
    from alphalab.tracking import R

    target = isolated_settings / alphalab.config.RUNS_DIR_NAME / "mlflow.db"
    _copy_sqlite(tracking_template_db, target)
    R.reset()
    yield f"sqlite:///{target}"
    R.reset()


@pytest.fixture(scope="session")
def pg_tracking_url(pg_url: str) -> Iterator[str]:
    """A migrated MLflow store in a PostgreSQL database of its own, dropped after the session.

    Tests sharing it stay independent by using unique experiment names.
    """
    import uuid

    import psycopg

    from alphalab.tracking import get_client

    name = f"alphalab_trk_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_url.rsplit("/", 1)[0] + f"/{name}"
    get_client(url)
    yield url
    _drop_pg_database(pg_url, name)


def _drop_pg_database(pg_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A name no other test (or earlier run of this one) uses: for shared stores."""
    import uuid

    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def fresh_pg_database(pg_url: str) -> Iterator[str]:
    """URL of a new, empty PostgreSQL database (no MLflow tables), dropped after the test."""
    import uuid

    import psycopg

    name = f"alphalab_new_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_url.rsplit("/", 1)[0] + f"/{name}"
    _drop_pg_database(pg_url, name)


@pytest.fixture(scope="session")
def mlflow_server_url(
    tracking_template_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An ``mlflow server`` (one worker) on a copy of the template store; stopped at the end."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    folder = tmp_path_factory.mktemp("mlflow-server")
    db = folder / "mlflow.db"
    _copy_sqlite(tracking_template_db, db)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen(
        [
            str(exe),
            "server",
            "--backend-store-uri",
            f"sqlite:///{db}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "server.log", "w"),  # noqa: SIM115 (closed with the process)
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log = (folder / "server.log").read_text()[-2000:]
            pytest.fail(f"mlflow server did not start on {url}:\n{log}")
        time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


# ---------------------------------------------------------------------------- features and models
MODEL_MARKET = {
    "seed": 11,
    "n_instruments": 80,
    "start": "2017-01-01",
    "end": "2020-12-31",
    "universes": {"csi300": 60},
}
MODEL_SEGMENTS = {
    "train": ["2017-01-01", "2018-12-31"],
    "valid": ["2019-01-01", "2019-12-31"],
    "test": ["2020-01-01", "2020-12-31"],
}


@pytest.fixture(scope="session")
def model_market_store(tmp_path_factory: pytest.TempPathFactory):
    """A simulated market big enough for models to find the planted signal (80 x 4 years)."""
    from alphalab.data import SimulationConfig, write_simulated_store

    folder = tmp_path_factory.mktemp("model-market") / "store"
    return write_simulated_store(folder, SimulationConfig(**MODEL_MARKET))


def make_dataset(store, handler: str = "Alpha158", dataset_cls=None, **dataset_kwargs):
    """A dataset over ``store`` with the standard train/valid/test segments (no cache)."""
    from alphalab.data import DatasetH

    handler_kwargs = {
        "instruments": "csi300",
        "start_time": "2017-01-01",
        "end_time": "2020-12-31",
        "fit_start_time": "2017-01-01",
        "fit_end_time": "2018-12-31",
        "store": store,
        "cache": False,
    }
    config = {"class": handler, "module_path": "alphalab.data", "kwargs": handler_kwargs}
    return (dataset_cls or DatasetH)(handler=config, segments=MODEL_SEGMENTS, **dataset_kwargs)


@pytest.fixture(scope="session")
def alpha158_dataset(model_market_store):
    """Alpha158 over the model market, loaded once per session; tests must not modify it."""
    dataset = make_dataset(model_market_store)
    dataset.setup_data()
    return dataset


COMPACT_FEATURES = [
    "$close/Ref($close, 1) - 1",
    "$close/Ref($close, 5) - 1",
    "$close/Ref($close, 20) - 1",
    "Mean($close, 5)/$close",
    "Mean($close, 20)/$close",
    "Std($close/Ref($close, 1), 20)",
    "($high - $low)/$open",
    "($close - $open)/$open",
    "Log($volume/Mean($volume, 20))",
    "Corr($close, Log($volume + 1), 10)",
    "Rank($close, 20)",
    "($close - Min($low, 20))/(Max($high, 20) - Min($low, 20) + 1e-12)",
]


@pytest.fixture(scope="session")
def compact_dataset(model_market_store):
    """Twelve price/volume features over the model market, z-scored and filled (fast models)."""
    from alphalab.data import DataHandlerLP, DatasetH, QlibDataLoader

    names = [f"F{i}" for i in range(len(COMPACT_FEATURES))]
    handler = DataHandlerLP(
        instruments="csi300",
        start_time="2017-01-01",
        end_time="2020-12-31",
        data_loader=QlibDataLoader(
            config={
                "feature": (COMPACT_FEATURES, names),
                "label": (["Ref($close, -2)/Ref($close, -1) - 1"], ["LABEL0"]),
            }
        ),
        infer_processors=[
            {"class": "RobustZScoreNorm", "kwargs": {"fields_group": "feature"}},
            {"class": "Fillna", "kwargs": {"fields_group": "feature"}},
        ],
        learn_processors=[
            "DropnaLabel",
            {"class": "CSRankNorm", "kwargs": {"fields_group": "label"}},
        ],
        fit_start_time="2017-01-01",
        fit_end_time="2018-12-31",
        store=model_market_store,
        cache=False,
    )
    dataset = DatasetH(handler=handler, segments=MODEL_SEGMENTS)
    dataset.setup_data()
    return dataset


# ---------------------------------------------------------------------------- workflows
LOADER = {
    "class": "QlibDataLoader",
    "kwargs": {
        "config": {
            "feature": (
                ["$close/Ref($close, 5) - 1", "Mean($close, 10)/$close", "Log($volume)"],
                ["ROC5", "MA10", "LOGV"],
            ),
            "label": (["Ref($close, -2)/Ref($close, -1) - 1"], ["LABEL0"]),
        }
    },
}


def _small_task(model: dict | None = None, records: list | None = None) -> dict:
    return {
        "model": model
        or {
            "class": "LinearModel",
            "module_path": "alphalab.model",
            "kwargs": {"estimator": "ridge", "alpha": 1.0},
        },
        "dataset": {
            "class": "DatasetH",
            "module_path": "alphalab.data",
            "kwargs": {
                "handler": {
                    "class": "DataHandlerLP",
                    "module_path": "alphalab.data",
                    "kwargs": {
                        "instruments": "csi300",
                        "start_time": "2017-01-01",
                        "end_time": "2020-12-31",
                        "data_loader": LOADER,
                        "infer_processors": [
                            {"class": "Fillna", "kwargs": {"fields_group": "feature"}}
                        ],
                        "learn_processors": ["DropnaLabel"],
                        "fit_end_time": "<dataset.kwargs.segments.train.1>",
                    },
                },
                "segments": {
                    "train": ["2017-01-01", "2018-12-31"],
                    "valid": ["2019-01-01", "2019-12-31"],
                    "test": ["2020-01-01", "2020-12-31"],
                },
            },
        },
        "record": records
        if records is not None
        else [
            {
                "class": "SignalRecord",
                "module_path": "alphalab.workflow",
                "kwargs": {"model": "<MODEL>", "dataset": "<DATASET>"},
            },
            {
                "class": "SigAnaRecord",
                "module_path": "alphalab.workflow",
                "kwargs": {"ana_long_short": True},
            },
            {
                "class": "PortAnaRecord",
                "module_path": "alphalab.workflow",
                "kwargs": {
                    "config": {
                        "strategy": {
                            "class": "TopkDropoutStrategy",
                            "module_path": "alphalab.evaluate",
                            "kwargs": {"signal": "<PRED>", "topk": 10, "n_drop": 2},
                        },
                        "backtest": {
                            "start_time": "2020-01-01",
                            "end_time": "2020-12-31",
                            "account": 1e8,
                            "benchmark": "SH000300",
                            "exchange_kwargs": {
                                "limit_threshold": 0.095,
                                "deal_price": "close",
                                "open_cost": 0.0005,
                                "close_cost": 0.0015,
                                "min_cost": 5,
                            },
                        },
                    }
                },
            },
        ],
    }


@pytest.fixture
def make_task():
    """Build a small linear-model task dict over the model market (records configurable)."""
    return _small_task
