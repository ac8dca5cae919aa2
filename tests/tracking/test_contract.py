"""Every tracking backend passes the same contract suite."""

from __future__ import annotations

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
