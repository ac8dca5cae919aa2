"""``alphalab exp list|runs|show|delete`` and ``alphalab ui`` on a real store."""

from __future__ import annotations

import re

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


def _cells(line: str) -> list[str]:
    """A table line's cells (columns are set apart by at least two spaces)."""
    return re.split(r"\s{2,}", line.strip())


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
    header = next(row for row in result.output.splitlines() if "run id" in row)
    parent_line = next(row for row in result.output.splitlines() if runs[3] in row)
    cells = dict(zip(_cells(header), _cells(parent_line), strict=False))
    assert cells["children"] == "1"
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


def test_exp_runs_shows_the_summary_metrics_first_under_short_names(tracking_uri: str) -> None:
    with R.start(experiment_name="cli-metrics", recorder_name="one"):
        R.log_metrics(
            **{
                "aaa_loss": 0.5,
                "Rank IC": 0.04,
                "IC": 0.03,
                "1day.excess_return_with_cost.annualized_return": 0.1234567,
            }
        )
    result = runner.invoke(app, ["exp", "runs", "cli-metrics", "--metrics", "3"], env=WIDE)
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "run id" in line)
    assert _cells(header)[-3:] == ["IC", "Rank IC", "ann. return (with cost)"]
    assert "aaa_loss" not in result.output and "0.1235" in result.output


def test_exp_runs_drops_the_least_useful_columns_on_a_narrow_terminal(runs: list[str]) -> None:
    result = runner.invoke(app, ["exp", "runs", "cli-exp"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    for run_id in runs:  # whole run ids, never cut
        assert run_id in result.output
    header = next(line for line in result.output.splitlines() if "run id" in line)
    assert "IC" in header and "start" not in header
    assert "Not shown, to fit 80 columns: " in result.output and "start" in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
