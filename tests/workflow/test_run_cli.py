from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from alphalab.cli import app
from alphalab.tracking import R

runner = CliRunner()
DATA = Path(__file__).parent / "data"
WIDE = {"COLUMNS": "200"}


@pytest.fixture
def qlib_yaml(tmp_path: Path, model_market_store, tracking_uri) -> Path:
    text = (DATA / "qlib_lightgbm_alpha158.yaml").read_text()
    path = tmp_path / "workflow_config_lightgbm_Alpha158.yaml"
    path.write_text(text.replace("__PROVIDER__", str(model_market_store.uri)))
    return path


def test_qlib_benchmark_yaml_runs_unchanged_end_to_end(qlib_yaml: Path) -> None:
    result = runner.invoke(
        app, ["run", str(qlib_yaml), "--set", "task.model.kwargs.learning_rate=0.1"], env=WIDE
    )
    assert result.exit_code == 0, result.output
    for shown in ("FINISHED", "run id", "Rank ICIR", "IR (with cost)", "time: fit", "report"):
        assert shown in result.output
    runs = R.list_recorders(experiment_name="Experiment")
    (recorder,) = runs.values()
    assert recorder.list_params()["model.kwargs.learning_rate"] == "0.1"
    assert "learning_rate: 0.1" in recorder.list_tags()["overrides"]
    assert recorder.list_metrics()["IC"] > 0
    assert "workflow/workflow_config_lightgbm_Alpha158.yaml" in recorder.list_artifacts("workflow")
    listed = runner.invoke(app, ["exp", "runs", "Experiment"], env=WIDE)
    assert listed.exit_code == 0 and recorder.id[:8] in listed.output

    out = qlib_yaml.parent / "regenerated"
    report = runner.invoke(app, ["report", recorder.id, "--output", str(out)], env=WIDE)
    assert report.exit_code == 0, report.output
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4, "returns, drawdown, IC and turnover charts"
    compared = runner.invoke(app, ["exp", "compare", recorder.id], env=WIDE)
    assert compared.exit_code == 0, compared.output
    assert f"({recorder.id[:8]})" in compared.output


def write_workflow(folder: Path, name: str, store_uri: str, task: dict, **extra) -> Path:
    config = {
        "qlib_init": {"provider_uri": store_uri},
        "experiment_name": "cli",
        "task": task,
        **extra,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_several_workflows_with_seeds_print_a_comparison(
    tmp_path: Path, model_market_store, tracking_uri, make_task
) -> None:
    signal_only = make_task(
        records=[
            {"class": "SignalRecord", "module_path": "alphalab.workflow"},
            {"class": "SigAnaRecord", "module_path": "alphalab.workflow"},
        ]
    )
    ridge = write_workflow(tmp_path, "ridge", model_market_store.uri, signal_only)
    lgb_task = {
        **signal_only,
        "model": {
            "class": "LGBModel",
            "module_path": "alphalab.model",
            "kwargs": {"num_boost_round": 10, "num_leaves": 7, "num_threads": 1},
        },
    }
    lgb = write_workflow(tmp_path, "lgb", model_market_store.uri, lgb_task)
    result = runner.invoke(app, ["run", str(ridge), str(lgb), "--seeds", "2"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "Comparison (mean ± std over seeds)" in result.output
    assert "±" in result.output.split("Comparison")[1]
    saved = list((tmp_path / "alphalab-runs" / "comparisons").glob("compare-*.csv"))
    assert len(saved) == 1 and "Rank IC" in saved[0].read_text()
    runs = R.list_recorders(experiment_name="cli")
    parents = [r for r in runs.values() if r.parent_id is None]
    assert len(parents) == 2 and all(p.child_count == 2 for p in parents)
    seeds = sorted(r.list_tags().get("seed", "") for r in runs.values() if r.parent_id)
    assert seeds == ["0", "0", "1", "1"]
    compared = runner.invoke(app, ["exp", "compare", "cli"], env=WIDE)
    assert compared.exit_code == 0, compared.output
    assert compared.output.count("±") >= 8, "mean ± std per metric for both workflows"
    assert "ridge" in compared.output and "lgb" in compared.output
    missing = runner.invoke(app, ["report", parents[0].id], env=WIDE)
    assert missing.exit_code == 1 and "has no backtest and no signal analysis" in missing.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "Config file not found"),
        ("task:\n  model: {class: LGBModel\n  dataset: x\n", r"bad\.yaml:3:\d+: YAML syntax error"),
        (
            "task:\n  model: {class: NoSuchModel, module_path: alphalab.model}\n"
            "  dataset: {class: DatasetH, kwargs: {handler: {class: Alpha158}, segments: {}}}\n",
            "Module 'alphalab.model' has no class 'NoSuchModel'",
        ),
        (
            "task: {model: {class: LGBModel, kwarg: {}}, dataset: {class: DatasetH}}\n",
            "task.model.kwarg: Extra inputs are not permitted",
        ),
    ],
)
def test_errors_are_one_clear_message(tmp_path: Path, tracking_uri, content, message) -> None:
    path = tmp_path / "bad.yaml"
    if content is not None:
        path.write_text(content)
    result = runner.invoke(app, ["run", str(path)], env=WIDE)
    assert result.exit_code == 1
    assert "Error:" in result.output
    assert re.search(message, result.output), result.output
    assert "Traceback" not in result.output


def test_empty_segment_and_missing_artifact_errors(
    tmp_path: Path, model_market_store, tracking_uri, make_task
) -> None:
    task = make_task(records=[{"class": "SignalRecord", "module_path": "alphalab.workflow"}])
    task["dataset"]["kwargs"]["segments"]["test"] = ["2030-01-01", "2030-12-31"]
    path = write_workflow(tmp_path, "empty", model_market_store.uri, task)
    result = runner.invoke(app, ["run", str(path)], env=WIDE)
    assert result.exit_code == 1
    assert "Segment 'test' [2030-01-01, 2030-12-31] has no rows" in result.output

    task = make_task(records=[{"class": "SigAnaRecord", "module_path": "alphalab.workflow"}])
    path = write_workflow(tmp_path, "nosignal", model_market_store.uri, task)
    result = runner.invoke(app, ["run", str(path)], env=WIDE)
    assert result.exit_code == 1
    assert "SigAnaRecord needs 'pred.pkl', written by SignalRecord" in result.output
    statuses = [r.status.value for r in R.list_recorders(experiment_name="cli").values()]
    assert statuses == ["FAILED", "FAILED"]


def test_unresolved_placeholder_and_bad_override(
    tmp_path: Path, model_market_store, tracking_uri, make_task
) -> None:
    task = make_task(records=[])
    task["dataset"]["kwargs"]["handler"]["kwargs"]["fit_end_time"] = (
        "<dataset.kwargs.segments.nope.1>"
    )
    path = write_workflow(tmp_path, "ref", model_market_store.uri, task)
    result = runner.invoke(app, ["run", str(path)], env=WIDE)
    assert result.exit_code == 1
    assert "Unresolved placeholder '<dataset.kwargs.segments.nope.1>'" in result.output
    result = runner.invoke(app, ["run", str(path), "--set", "novalue"], env=WIDE)
    assert result.exit_code == 1 and "--set expects key.path=value" in result.output
