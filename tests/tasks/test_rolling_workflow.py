"""A rolling study end to end through the CLI: windows -> 2 workers -> merge -> analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from alphalab.cli import app
from alphalab.exceptions import ConfigError
from alphalab.tasks import RollingOptions, TaskManager, run_rolling
from alphalab.testing._tasks import tiny_task
from alphalab.tracking import R

runner = CliRunner()


def _workflow(
    tmp_path: Path, store_uri: str, rolling: dict[str, Any], backtest: bool = True
) -> Path:
    task = tiny_task(
        train=("2019-03-01", "2019-12-31"),
        valid=("2020-01-02", "2020-03-31"),
        test=("2020-04-01", "2020-06-30"),
    )
    task["record"] = [
        {"class": "SignalRecord", "module_path": "alphalab.workflow"},
        {"class": "SigAnaRecord", "module_path": "alphalab.workflow"},
        {
            "class": "PortAnaRecord",
            "module_path": "alphalab.workflow",
            "kwargs": {
                "config": {
                    "strategy": {
                        "class": "TopkDropoutStrategy",
                        "module_path": "alphalab.evaluate",
                        "kwargs": {"signal": "<PRED>", "topk": 5, "n_drop": 1},
                    },
                    "backtest": {
                        "start_time": "2020-04-01",
                        "end_time": "2020-06-30",
                        "account": 1000000,
                        "benchmark": "SH000300",
                    },
                }
            },
        },
    ]
    if not backtest:
        task["record"] = task["record"][:2]
    config = {
        "qlib_init": {"provider_uri": store_uri, "region": "cn"},
        "experiment_name": "rolling_e2e",
        "rolling": rolling,
        "task": task,
    }
    path = tmp_path / "rolling.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.slow
def test_rolling_cli_with_two_workers(
    tracking_uri: str, small_market_store: Any, tmp_path: Path
) -> None:
    path = _workflow(tmp_path, small_market_store.uri, {"step": 32, "workers": 2})
    result = runner.invoke(app, ["rolling", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "windows" in result.output and "IC" in result.output
    tm = TaskManager("rolling-rolling_e2e")
    assert tm.task_stat() == {"done": 2}  # 63 trading days in blocks of 32
    assert len({t.result for t in tm.query()}) == 2  # one run per window
    exp = R.get_exp(experiment_name="rolling_e2e")
    runs = exp.list_recorders("list")
    assert len(runs) == 3  # two windows and the merged run
    (merged,) = [r for r in runs if r.name == "rolling-rolling"]
    pred = merged.load_object("pred.pkl")
    dates = pred.index.get_level_values("datetime")
    calendar = small_market_store.calendar("2020-04-01", "2020-06-30")
    assert sorted(dates.unique()) == list(calendar)  # one continuous frame
    assert not pred.index.duplicated().any()
    # Each window's rows come from the run that tested that window.
    window_runs = merged.list_tags()["rolling_runs"].split(",")
    second = R.get_recorder(recorder_id=window_runs[1]).load_object("pred.pkl")
    pd.testing.assert_frame_equal(pred.loc[second.index.get_level_values(0).unique()], second)
    metrics = merged.list_metrics()
    assert {"IC", "Rank IC"} <= set(metrics)
    assert "1day.excess_return_with_cost.annualized_return" in metrics


def test_rolling_in_process_reuses_finished_windows(
    tracking_uri: str, small_market_store: Any, tmp_path: Path
) -> None:
    rolling = {"step": 40, "rtype": "sliding"}
    path = _workflow(tmp_path, small_market_store.uri, rolling, backtest=False)
    first = run_rolling(path, progress=False)
    assert first.test_windows == (("2020-04-01", "2020-05-28"), ("2020-05-29", "2020-06-30"))
    again = run_rolling(path, progress=False)
    assert again.window_run_ids == first.window_run_ids  # nothing retrained
    assert again.run_id != first.run_id and "IC" in again.metrics


def test_rolling_section_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"Unknown key\(s\) \['stride'\] in the 'rolling'"):
        RollingOptions.from_section({"stride": 3}, {})
    with pytest.raises(ConfigError, match=r"rolling\.workers must be an integer >= 0"):
        RollingOptions.from_section({"workers": -1}, {})
    assert RollingOptions.from_section({"step": 5}, {"step": 7, "pool": None}).step == 7
