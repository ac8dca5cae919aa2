"""Small studies on the simulated market: serial, workers, resume, pruning, failures."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from alphalab.cli import app
from alphalab.exceptions import TuneError
from alphalab.tracking import R, RecorderStatus
from alphalab.tune import load_tune_config, open_storage, run_tune, study_trials
from alphalab.workflow import run_workflow

pytestmark = pytest.mark.slow


def _workflow(provider_uri: str) -> dict[str, Any]:
    return {
        "qlib_init": {"provider_uri": provider_uri, "region": "cn"},
        "experiment_name": "tiny",
        "task": {
            "model": {
                "class": "LGBModel",
                "module_path": "alphalab.model",
                "kwargs": {
                    "learning_rate": 0.1,
                    "num_leaves": 15,
                    "num_threads": 1,
                    "num_boost_round": 20,
                    "early_stopping_rounds": 10,
                },
            },
            "dataset": {
                "class": "DatasetH",
                "module_path": "alphalab.data",
                "kwargs": {
                    "handler": {
                        "class": "Alpha158",
                        "module_path": "alphalab.data",
                        "kwargs": {
                            "start_time": "2019-01-01",
                            "end_time": "2020-12-31",
                            "fit_start_time": "2019-01-01",
                            "fit_end_time": "2019-12-31",
                            "instruments": "csi300",
                        },
                    },
                    "segments": {
                        "train": ["2019-01-01", "2019-12-31"],
                        "valid": ["2020-01-01", "2020-06-30"],
                        "test": ["2020-07-01", "2020-12-31"],
                    },
                },
            },
            "record": [
                {
                    "class": "SignalRecord",
                    "module_path": "alphalab.workflow",
                    "kwargs": {"model": "<MODEL>", "dataset": "<DATASET>"},
                },
                {"class": "SigAnaRecord", "module_path": "alphalab.workflow", "kwargs": {}},
            ],
        },
    }


LGB_SPACE = {
    "task.model.kwargs.learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True},
    "task.model.kwargs.num_leaves": {"type": "int", "low": 4, "high": 32},
}


def _write(
    folder: Path,
    provider_uri: str,
    *,
    name: str,
    tuners: list[dict[str, Any]],
    criterion: dict[str, Any] | None = None,
    study: dict[str, Any] | None = None,
    trial_records: str = "all",
) -> Path:
    (folder / "wf.yaml").write_text(yaml.safe_dump(_workflow(provider_uri)))
    tune = {
        "BASE_CONFIG_PATH": "wf.yaml",
        "experiment": {"name": f"{name}_exp", "output_dir": f"out_{name}"},
        "study": {"name": name, "heartbeat_interval": 1, "grace_period": 2, **(study or {})},
        "optimization_criteria": criterion or {"metric": "Rank IC", "direction": "max"},
        "trial_records": trial_records,
        "tuner_pipeline": tuners,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(tune, sort_keys=False))
    return path


def _trials(study_name: str, storage: str) -> list[optuna.trial.FrozenTrial]:
    rdb = open_storage(storage, heartbeat_interval=None)
    return optuna.load_study(study_name=study_name, storage=rdb).get_trials()


def _check_runs(result: Any, trials: list[optuna.trial.FrozenTrial]) -> None:
    """Every trial has its own child run of the study run, with its value and tags."""
    parent = R.get_recorder(recorder_id=result.parent_run_id)
    children = {c.id: c for c in parent.list_children()}
    for trial in trials:
        run = children[trial.user_attrs["alphalab.run_id"]]
        tags = run.list_tags()
        assert tags["alphalab.tune.trial"] == str(trial.number)
        assert tags["alphalab.tune.study"] == result.study_name
        if trial.state == optuna.trial.TrialState.COMPLETE:
            metrics = run.list_metrics()
            assert metrics["objective"] == pytest.approx(trial.value, abs=1e-12)
            assert metrics["Rank IC"] == pytest.approx(trial.value, abs=1e-12)
            assert run.status is RecorderStatus.FINISHED


def test_serial_study_outputs_and_best_config_reproduces(
    tracking_uri: str, small_market_store: Any, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        small_market_store.uri,
        name="serial",
        tuners=[
            {
                "name": "lgb",
                "n_trials": 2,
                "sampler": {"type": "tpe", "seed": 1},
                "pruner": "none",
                "space": LGB_SPACE,
            },
            {
                "name": "data",
                "n_trials": 2,
                "sampler": "grid",
                "space": {"task.model.kwargs.min_data_in_leaf": [40]},
            },
        ],
    )
    result = run_tune(load_tune_config(path))
    storage = f"sqlite:///{tmp_path / 'alphalab-runs' / 'tasks.db'}"
    lgb = _trials("serial/lgb", storage)
    data = _trials("serial/data", storage)
    assert [t.state.name for t in lgb] == ["COMPLETE"] * 2
    # No pruner: the curves are in the trials' runs, not written to the study per round.
    assert all(t.intermediate_values == {} for t in lgb)
    assert [t.params["task.model.kwargs.min_data_in_leaf"] for t in data] == [40]  # grid of 1
    _check_runs(result, lgb + data)

    # The second tuner started from the first one's best values.
    best_lgb = max(lgb, key=lambda t: t.value)
    for trial in data:
        overrides = json.loads(trial.user_attrs["alphalab.overrides"])
        assert (
            overrides["task.model.kwargs.num_leaves"]
            == best_lgb.params["task.model.kwargs.num_leaves"]
        )

    out = tmp_path / "out_serial"
    local = json.loads((out / "lgb" / "local_best_params.json").read_text())
    assert local["best_trial"] == best_lgb.number
    assert local["best_value"] == pytest.approx(best_lgb.value)
    overall = json.loads((out / "global_best_params.json").read_text())
    best_value = max(t.value for t in lgb + data)
    assert overall["best_value"] == pytest.approx(best_value)
    for png in ("optimization_history", "param_importances", "parallel_coordinate"):
        assert (out / "lgb" / f"{png}.png").stat().st_size > 1000
    assert (out / "data" / "optimization_history.png").is_file()
    assert not (out / "data" / "param_importances.png").exists()  # one trial: no importances
    parent = R.get_recorder(recorder_id=result.parent_run_id)
    assert "tune/global_best_params.json" in parent.list_artifacts("tune")
    assert "tune/lgb/optimization_history.png" in parent.list_artifacts("tune/lgb")
    assert parent.list_metrics()["best_value"] == pytest.approx(best_value)
    tags = parent.list_tags()
    assert tags["alphalab.tune.best_run"] == overall["run_id"]
    for key, value in overall["overrides"].items():
        assert json.loads(tags[f"best.{key}"]) == value

    # The best config runs with `alphalab run` and reproduces the best trial's criterion.
    assert result.best_config is not None
    summary = run_workflow(result.best_config, experiment_name="rerun")
    assert summary.metrics["Rank IC"] == pytest.approx(overall["best_value"], rel=1e-9)

    # A second start without --resume refuses to mix into the existing study.
    with pytest.raises(TuneError, match="already exists in the tuning storage; pass --resume"):
        run_tune(load_tune_config(path))

    # `alphalab tune FILE --resume --n-trials 3` tops the first tuner up to 3 trials; the grid
    # tuner is complete already (its grid has 1 point).
    more = CliRunner().invoke(
        app, ["tune", str(path), "--resume", "--n-trials", "3"], env={"COLUMNS": "200"}
    )
    assert more.exit_code == 0, more.output
    assert "Tune study serial" in more.output
    assert len(_trials("serial/lgb", storage)) == 3
    assert len(_trials("serial/data", storage)) == 1
    assert len(R.get_recorder(recorder_id=result.parent_run_id).list_children()) == 4

    shown = CliRunner().invoke(app, ["tune", "show", "serial"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert "Study serial/lgb" in shown.output and "Study serial/data" in shown.output
    assert shown.output.count("COMPLETE") == 4
    assert set(study_trials("serial")) == {"serial/lgb", "serial/data"}
    missing = CliRunner().invoke(app, ["tune", "show", "nope"])
    assert missing.exit_code == 1
    assert "No study 'nope' in the tuning storage" in missing.output


def test_pruning_stops_bad_lightgbm_trials(
    tracking_uri: str, small_market_store: Any, tmp_path: Path
) -> None:
    space = {
        "task.model.kwargs.learning_rate": {"type": "float", "low": 1e-4, "high": 0.5, "log": True},
    }
    path = _write(
        tmp_path,
        small_market_store.uri,
        name="prune",
        criterion={"report_type": "model", "report_factor": "valid.l2"},
        trial_records="needed",
        tuners=[
            {
                "name": "lgb",
                "n_trials": 6,
                "sampler": {"type": "random", "seed": 5},
                "pruner": {"type": "median", "n_startup_trials": 2, "n_warmup_steps": 2},
                "space": space,
            }
        ],
    )
    result = run_tune(load_tune_config(path))
    trials = _trials("prune/lgb", f"sqlite:///{tmp_path / 'alphalab-runs' / 'tasks.db'}")
    states = [t.state.name for t in trials]
    assert len(trials) == 6
    assert "PRUNED" in states, states
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    children = {c.id: c for c in R.get_recorder(recorder_id=result.parent_run_id).list_children()}
    for trial in pruned:
        assert len(trial.intermediate_values) < 20  # stopped before the last round
        run = children[trial.user_attrs["alphalab.run_id"]]
        assert run.status is RecorderStatus.KILLED
        assert run.list_tags()["alphalab.tune.state"] == "PRUNED"
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert result.best is not None
    assert result.best["best_value"] == pytest.approx(min(t.value for t in complete))
    # The criterion is the best point of the logged validation curve.
    best_run = children[result.best["run_id"]]
    curve = best_run.metric_history("valid.l2")
    assert curve["value"].min() == pytest.approx(result.best["best_value"])


def test_failing_trial_is_recorded_and_the_study_goes_on(
    tracking_uri: str, small_market_store: Any, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        small_market_store.uri,
        name="fails",
        trial_records="needed",
        tuners=[
            {
                "name": "loss",
                "n_trials": 5,
                "sampler": "grid",
                "space": {"task.model.kwargs.loss": ["bogus", "mse"]},
            }
        ],
    )
    result = run_tune(load_tune_config(path))
    trials = _trials("fails/loss", f"sqlite:///{tmp_path / 'alphalab-runs' / 'tasks.db'}")
    by_loss = {t.params["task.model.kwargs.loss"]: t for t in trials}
    assert len(trials) == 2  # the grid has two points
    assert by_loss["bogus"].state.name == "FAIL"
    assert by_loss["mse"].state.name == "COMPLETE"
    run = R.get_recorder(recorder_id=by_loss["bogus"].user_attrs["alphalab.run_id"])
    assert run.status is RecorderStatus.FAILED
    assert "LGBModel loss must be one of" in run.list_tags()["alphalab.error"]
    assert result.tuners[0].states == {"FAIL": 1, "COMPLETE": 1}

    # A tree that cannot split predicts a constant: the Rank IC is NaN, so the trial fails.
    only_nan = _write(
        tmp_path,
        small_market_store.uri,
        name="nan",
        trial_records="needed",
        tuners=[
            {"name": "l", "n_trials": 1, "space": {"task.model.kwargs.min_data_in_leaf": [10**6]}}
        ],
    )
    with pytest.raises(
        TuneError,
        match=r"No trial of tuner 'l' completed \(1 fail\); first failure: the criterion "
        r"'Rank IC' is nan",
    ):
        run_tune(load_tune_config(only_nan))
    trial = _trials("nan/l", f"sqlite:///{tmp_path / 'alphalab-runs' / 'tasks.db'}")[0]
    run = R.get_recorder(recorder_id=trial.user_attrs["alphalab.run_id"])
    assert run.status is RecorderStatus.FAILED


def _parallel_study(folder: Path, provider_uri: str, storage: str, name: str) -> None:
    path = _write(
        folder,
        provider_uri,
        name=name,
        study={"storage": storage},
        trial_records="needed",
        tuners=[
            {
                "name": "lgb",
                "n_trials": 3,
                "sampler": {"type": "tpe", "seed": 2},
                "pruner": "none",
                "space": LGB_SPACE,
            }
        ],
    )
    result = run_tune(load_tune_config(path), workers=2)
    trials = _trials(f"{name}/lgb", storage)
    assert sorted(t.number for t in trials) == [0, 1, 2]  # none lost, none extra
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert len({t.user_attrs["alphalab.run_id"] for t in trials}) == 3
    _check_runs(result, trials)
    assert result.best is not None
    assert result.best["best_value"] == pytest.approx(max(t.value for t in trials))


def test_two_workers_share_a_sqlite_study(
    tracking_uri: str, small_market_store: Any, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    _parallel_study(tmp_path, small_market_store.uri, storage, "par_sqlite")


@pytest.mark.postgres
def test_two_workers_share_a_postgres_study(
    tracking_uri: str, small_market_store: Any, tmp_path: Path, fresh_pg_database: str
) -> None:
    _parallel_study(tmp_path, small_market_store.uri, fresh_pg_database, "par_pg")


def test_resume_after_the_process_is_killed(
    tracking_uri: str, small_market_store: Any, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        small_market_store.uri,
        name="killed",
        trial_records="needed",
        tuners=[
            {
                "name": "lgb",
                "n_trials": 2,
                "sampler": {"type": "random", "seed": 4},
                "pruner": "none",
                "space": LGB_SPACE,
            }
        ],
    )
    storage = f"sqlite:///{tmp_path / 'alphalab-runs' / 'tasks.db'}"
    exe = Path(sys.executable).with_name("alphalab")
    env = {**os.environ, "ALPHALAB_PROGRESS": "0"}
    proc = subprocess.Popen(
        [str(exe), "-q", "tune", str(path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:
        while True:  # kill it while its second trial runs (its objective and heartbeat started)
            assert proc.poll() is None, "the tune process ended before it was killed"
            assert time.monotonic() < deadline, "the tune process never reached trial 1"
            try:
                trials = _trials("killed/lgb", storage)
            except Exception:  # the study does not exist yet
                trials = []
            states = [t.state.name for t in trials]
            if states == ["COMPLETE", "RUNNING"] and "alphalab.run_id" in trials[1].user_attrs:
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    time.sleep(3)  # past the grace period: the running trial is stale

    result = run_tune(load_tune_config(path), resume=True)
    trials = _trials("killed/lgb", storage)
    states = [t.state.name for t in trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE"]
    killed, retry = trials[1], trials[2]
    assert retry.params == killed.params  # the killed trial was run again: nothing lost
    assert retry.system_attrs["failed_trial"] == 1
    run = R.get_recorder(recorder_id=killed.user_attrs["alphalab.run_id"])
    assert run.status is RecorderStatus.KILLED
    assert result.best is not None
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert result.best["best_value"] == pytest.approx(max(t.value for t in complete))
    parent = R.get_recorder(recorder_id=result.parent_run_id)
    assert parent.status is RecorderStatus.FINISHED
    assert len(parent.list_children()) == 3
    assert not math.isnan(result.best["best_value"])
