"""``alphalab exp list|runs|show|delete`` and ``alphalab ui`` on a real store."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from alphalab.cli import app
from alphalab.tracking import R

runner = CliRunner()
WIDE = {"COLUMNS": "250"}


@pytest.fixture
def runs(tracking_uri: str) -> list[str]:
    ids = []
    for i in range(3):
        with R.start(experiment_name="cli-exp", recorder_name=f"run{i}") as rec:
            R.log_params(seed=i)
            R.log_metrics(IC=0.01 * i, ICIR=0.1 * i)
            R.save_objects(**{"pred.pkl": [i]})
            ids.append(rec.id)
    with R.start(experiment_name="cli-exp", recorder_name="parent") as parent:
        with R.start(nested=True, recorder_name="kid"):
            pass
        ids.append(parent.id)
    return ids


def test_exp_list_counts_runs(runs: list[str]) -> None:
    result = runner.invoke(app, ["exp", "list"], env=WIDE)
    assert result.exit_code == 0, result.output
    line = next(row for row in result.output.splitlines() if "cli-exp" in row)
    assert line.split("│")[3].strip() == "5"


def test_exp_runs_table_and_filter(runs: list[str]) -> None:
    result = runner.invoke(app, ["exp", "runs", "cli-exp"], env=WIDE)
    assert result.exit_code == 0, result.output
    for run_id in runs:
        assert run_id in result.output
    assert "FINISHED" in result.output and "ICIR" in result.output
    parent_line = next(row for row in result.output.splitlines() if runs[3] in row)
    assert "│ 1 " in parent_line  # one child
    filtered = runner.invoke(
        app, ["exp", "runs", "cli-exp", "--filter", "metrics.IC > 0.015"], env=WIDE
    )
    assert filtered.exit_code == 0, filtered.output
    assert runs[2] in filtered.output and runs[0] not in filtered.output
    missing = runner.invoke(app, ["exp", "runs", "nope"], env=WIDE)
    assert missing.exit_code == 1
    assert "No experiment named 'nope'" in missing.output


def test_exp_show_lists_everything(runs: list[str]) -> None:
    result = runner.invoke(app, ["exp", "show", runs[1]], env=WIDE)
    assert result.exit_code == 0, result.output
    for expected in ("status: FINISHED", "seed", "ICIR", "hostname", "pred.pkl", "packages.txt"):
        assert expected in result.output
    unknown = runner.invoke(app, ["exp", "show", "0" * 32], env=WIDE)
    assert unknown.exit_code == 1
    assert "No run with id" in unknown.output


def test_exp_delete_run_and_experiment(runs: list[str]) -> None:
    result = runner.invoke(app, ["exp", "delete", runs[0], "--yes"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert len(R.list_recorders(experiment_name="cli-exp")) == 4
    declined = runner.invoke(app, ["exp", "delete", "cli-exp", "--experiment"], input="n\n")
    assert declined.exit_code == 1
    assert "cli-exp" in R.list_experiments()
    result = runner.invoke(app, ["exp", "delete", "cli-exp", "--experiment", "-y"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "cli-exp" not in R.list_experiments()


def test_ui_is_registered() -> None:
    result = runner.invoke(app, ["ui", "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "MLflow UI" in result.output
