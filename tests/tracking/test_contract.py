"""Every tracking backend passes the same contract suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alphalab.config import get_settings
from alphalab.testing import TrackingBackendContract
from alphalab.tracking import MlflowExpManager


class TestSqliteBackend(TrackingBackendContract):
    @pytest.fixture
    def manager(self, tracking_uri: str, tmp_path: Path) -> MlflowExpManager:
        settings = get_settings()
        return MlflowExpManager(
            tracking_uri,
            artifact_location=settings.artifact_location,
            journal_dir=tmp_path / "journal",
        )

    @pytest.fixture
    def exp_name(self, unique_name: str) -> str:
        return unique_name


class TestSqliteThroughTheClient(TrackingBackendContract):
    """SQLite with the direct SQL path off: every write through MLflow's client calls."""

    @pytest.fixture
    def manager(self, tracking_uri: str, tmp_path: Path) -> MlflowExpManager:
        settings = get_settings()
        manager = MlflowExpManager(
            tracking_uri,
            artifact_location=settings.artifact_location,
            journal_dir=tmp_path / "journal",
            sql_fast_path=False,
        )
        assert manager.fast is None
        return manager

    @pytest.fixture
    def exp_name(self, unique_name: str) -> str:
        return unique_name


@pytest.mark.postgres
class TestPostgresBackend(TrackingBackendContract):
    @pytest.fixture
    def manager(self, pg_tracking_url: str, tmp_path: Path) -> MlflowExpManager:
        return MlflowExpManager(
            pg_tracking_url,
            artifact_location=str(tmp_path / "artifacts"),
            journal_dir=tmp_path / "journal",
        )

    @pytest.fixture
    def exp_name(self, unique_name: str) -> str:
        return unique_name


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("ALPHALAB_TEST_MLFLOW_SERVER") != "1",
    reason="starts an mlflow server (~45 s on 2 cores); set ALPHALAB_TEST_MLFLOW_SERVER=1",
)
class TestHttpBackend(TrackingBackendContract):
    """Against a real ``mlflow server`` (artifacts proxied through the server)."""

    @pytest.fixture
    def manager(self, mlflow_server_url: str, tmp_path: Path) -> MlflowExpManager:
        return MlflowExpManager(
            mlflow_server_url, artifact_location=None, journal_dir=tmp_path / "journal"
        )

    @pytest.fixture
    def exp_name(self, unique_name: str) -> str:
        return unique_name
