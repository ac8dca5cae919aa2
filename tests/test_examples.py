"""Every example runs, on a small simulated market spanning the examples' dates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alphalab.cli import app
from alphalab.tracking import R

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SMALL = "simulated://?seed=3&n_instruments=30&universes=csi300:25"
QUICK = {
    "workflow_lightgbm_alpha158.yaml": ["task.model.kwargs.num_boost_round=30"],
    "workflow_mlp_alpha158.yaml": [
        "task.model.kwargs.max_steps=60",
        "task.model.kwargs.eval_steps=20",
    ],
    "workflow_gru_alpha360.yaml": [
        "task.model.kwargs.n_epochs=1",
        "task.model.kwargs.hidden_size=8",
        "task.model.kwargs.num_layers=1",
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(QUICK))
def test_yaml_example_runs(name: str, tracking_uri: str) -> None:
    if "lightgbm" not in name:
        pytest.importorskip("torch")
    overrides = [
        f"qlib_init.provider_uri={SMALL}",
        *QUICK[name],
        "port_analysis_config.strategy.kwargs.topk=10",
    ]
    args = ["run", str(EXAMPLES / name)]
    for item in overrides:
        args += ["--set", item]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    (recorder,) = R.list_recorders(experiment_name=name.removesuffix(".yaml")).values()
    assert recorder.status.value == "FINISHED"
    assert {"IC", "1day.excess_return_with_cost.annualized_return"} <= set(recorder.list_metrics())


@pytest.mark.slow
def test_workflow_by_code_runs(tracking_uri: str, model_market_store) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "workflow_by_code.py"),
            "--provider-uri",
            str(model_market_store.uri),
            "--quick",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "predictions" in done.stdout and "IC " in done.stdout
