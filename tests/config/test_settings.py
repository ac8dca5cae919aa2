from __future__ import annotations

from pathlib import Path

import pytest

import alphalab
from alphalab.config import ENV_VARS, get_settings, init, resolve_settings
from alphalab.exceptions import ConfigError


def test_defaults_live_under_the_working_directory(isolated_settings: Path) -> None:
    settings = get_settings()
    runs = isolated_settings / "alphalab-runs"
    assert settings.provider_uri is None
    assert settings.tracking_uri == f"sqlite:///{runs / 'mlflow.db'}"
    assert settings.artifact_location == str(runs / "artifacts")
    assert settings.task_uri == f"sqlite:///{runs / 'tasks.db'}"
    assert settings.experiment_name == "Experiment"
    assert settings.region == "cn"
    assert not runs.exists(), "resolving settings must not create files"


def test_precedence_argument_over_init_over_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALPHALAB_EXPERIMENT_NAME", "from-env")
    monkeypatch.setenv("ALPHALAB_REGION", "us")
    report = resolve_settings()
    assert report.settings.experiment_name == "from-env"
    assert report.sources["experiment_name"] == "environment"

    alphalab.init(experiment_name="from-init")
    report = resolve_settings()
    assert report.settings.experiment_name == "from-init"
    assert report.sources["experiment_name"] == "init"
    assert report.settings.region == "us"
    assert report.sources["region"] == "environment"

    report = resolve_settings(experiment_name="explicit")
    assert report.settings.experiment_name == "explicit"
    assert report.sources["experiment_name"] == "argument"
    assert report.sources["cache_dir"] == "default"


def test_init_accepts_qlib_keywords(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "cn_data"
    settings = init(
        provider_uri={"day": str(data)},
        region="CN",
        exp_manager={
            "class": "MLflowExpManager",
            "module_path": "qlib.workflow.expm",
            "kwargs": {"uri": str(tmp_path / "mlruns"), "default_exp_name": "Qlib"},
        },
        kernels=1,
        redis_port=-1,
    )
    assert settings.provider_uri == str(data)
    assert settings.region == "cn"
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert settings.experiment_name == "Qlib"
    assert settings.n_jobs == 1
    assert "redis_port" in caplog.text


def test_provider_uri_expands_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert init(provider_uri="~/.qlib/qlib_data/cn_data").provider_uri == str(
        tmp_path / ".qlib/qlib_data/cn_data"
    )


def test_plain_postgres_uri_is_accepted() -> None:
    uri = "postgresql://postgres@127.0.0.1:5432/test"
    settings = init(tracking_uri=uri, task_uri=uri)
    assert settings.tracking_uri == uri
    assert settings.task_uri == uri


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"colour": "red"}, r"Unknown setting 'colour'; expected one of: .*provider_uri"),
        ({"region": "eu"}, r"'region' setting must be one of \('cn', 'us'\); got 'eu'"),
        ({"tracking_uri": "mongodb://x"}, r"unsupported scheme 'mongodb'"),
        ({"task_uri": "http://x"}, r"'task_uri' setting has an unsupported scheme 'http'"),
        ({"n_jobs": 0}, r"'n_jobs' setting must be >= 1; got 0"),
        ({"provider_uri": {"1min": "x"}}, r"must have a 'day' entry"),
    ],
)
def test_invalid_settings_are_rejected_and_change_nothing(
    kwargs: dict[str, object], message: str
) -> None:
    before = get_settings()
    with pytest.raises(ConfigError, match=message):
        init(**kwargs)
    assert get_settings() == before


def test_invalid_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VARS["n_jobs"], "many")
    with pytest.raises(ConfigError, match=r"ALPHALAB_\* environment variable.*'many'"):
        get_settings()


def test_settings_are_frozen() -> None:
    settings = get_settings()
    with pytest.raises(AttributeError):
        settings.region = "us"  # type: ignore[misc]
    assert settings.with_overrides(region="us").region == "us"
