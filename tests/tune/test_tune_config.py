from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alphalab.exceptions import ConfigError
from alphalab.tune import load_tune_config, parse_criterion, parse_tune_config, trial_task

WORKFLOW = {
    "experiment_name": "wf",
    "task": {
        "model": {"class": "LGBModel", "module_path": "alphalab.model", "kwargs": {}},
        "dataset": {"class": "DatasetH", "module_path": "alphalab.data", "kwargs": {}},
        "record": [
            {
                "class": "SignalRecord",
                "module_path": "alphalab.workflow",
                "kwargs": {"model": "<MODEL>", "dataset": "<DATASET>"},
            },
            {
                "class": "PortAnaRecord",
                "module_path": "alphalab.workflow",
                "kwargs": {"config": {"strategy": {"kwargs": {"topk": 5, "n_drop": 1}}}},
            },
        ],
    },
}
TUNER = {"name": "m", "n_trials": 3, "space": {"task.model.kwargs.num_leaves": [4, 8]}}


def _config(**sections: object) -> dict:
    return {"workflow": WORKFLOW, "tuner_pipeline": [TUNER], **sections}


def test_base_config_path_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(yaml.safe_dump(WORKFLOW))
    (tmp_path / "tune.yaml").write_text(
        "BASE_CONFIG_PATH: wf.yaml\n"
        "experiment: {name: exp, dir: out}\n"
        "optimization_criteria: {report_type: excess_return_with_cost, "
        "report_factor: information_ratio, optim_type: max}\n"
        "tuner_pipeline:\n"
        "  - max_evals: 4\n"
        "    sampler: {type: random, seed: 3}\n"
        "    pruner: none\n"
        "    spaces: [topk_dropout]\n"
    )
    config = load_tune_config(tmp_path / "tune.yaml")
    assert config.experiment_name == "exp"
    assert config.study_name == "exp"
    assert config.output_dir == tmp_path / "out"
    assert config.criterion.metric == "1day.excess_return_with_cost.information_ratio"
    assert config.criterion.direction == "maximize"
    assert config.criterion.source == "portfolio"
    tuner = config.tuners[0]
    described = (tuner.name, tuner.n_trials, tuner.sampler, tuner.pruner)
    assert described == ("tuner0", 4, "random", "none")
    assert tuner.sampler_kwargs == {"seed": 3}
    assert "task.record.PortAnaRecord.kwargs.config.strategy.kwargs.topk" in tuner.space
    assert config.workflow["task"]["model"]["class"] == "LGBModel"
    assert config.with_n_trials(7).tuners[0].n_trials == 7


def test_criterion_forms() -> None:
    c = parse_criterion({"metric": "Rank IC"}, "t")
    assert (c.metric, c.direction, c.source, c.pruning_metric) == (
        "Rank IC",
        "maximize",
        "signal",
        "auto",
    )
    c = parse_criterion({"report_type": "model", "report_factor": "valid.l2"}, "t")
    assert (c.direction, c.source, c.pruning_metric, c.pruning_direction) == (
        "minimize",
        "model",
        "valid.l2",
        "minimize",
    )
    c = parse_criterion({"metric": "1day.excess_return_with_cost.max_drawdown"}, "t")
    assert c.direction == "maximize"
    c = parse_criterion({"metric": "ICIR", "direction": "min", "pruning_metric": "none"}, "t")
    assert (c.direction, c.pruning_metric) == ("minimize", None)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"metric": "IC", "report_type": "model"}, "give either 'metric' or 'report_type'"),
        ({"report_type": "signal"}, "give 'metric'"),
        ({"report_type": "signal", "report_factor": "sharpe"}, "'sharpe' is not a signal metric"),
        ({"report_type": "pred_long", "report_factor": "x"}, "unknown 'pred_long'"),
        ({"metric": "IC", "optim_type": "correlation"}, "'correlation' is not supported"),
        ({"metric": "IC", "direction": "up"}, "expected max/maximize or min/minimize"),
        ({"metric": "IC", "target": 1}, r"unknown key\(s\) \['target'\]"),
    ],
)
def test_invalid_criteria(spec: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_criterion(spec, "tune.yaml: optimization_criteria")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"workflow": WORKFLOW}, "'tuner_pipeline' is missing"),
        ({"tuner_pipeline": [TUNER]}, "no base workflow: set BASE_CONFIG_PATH"),
        (_config(tuner_pipeline=[]), "must be a non-empty list"),
        (_config(tuner_pipeline=[{"n_trials": 2}]), "has no 'space'"),
        (_config(tuner_pipeline=[{**TUNER, "n_trials": 0}]), "n_trials: expected an integer >= 1"),
        (_config(tuner_pipeline=[{**TUNER, "sampler": "bayes"}]), "unknown type 'bayes'"),
        (_config(tuner_pipeline=[{**TUNER, "pruner": "asha"}]), "unknown type 'asha'"),
        (_config(tuner_pipeline=[TUNER, TUNER]), "tuner names must be unique"),
        (
            _config(tuner_pipeline=[{**TUNER, "space": {"model.kwargs.x": [1]}}]),
            "key paths must start with 'task.'",
        ),
        (
            _config(tuner_pipeline=[{**TUNER, "space": {"task.modle.kwargs.x": [1]}}]),
            r"task has no key 'modle' \(keys: model, dataset, record\)",
        ),
        (
            _config(
                tuner_pipeline=[
                    {
                        **TUNER,
                        "sampler": "grid",
                        "space": {"task.x": {"type": "float", "low": 0, "high": 1}},
                    }
                ]
            ),
            "grid sampler needs a finite set",
        ),
        (_config(study={"grace_period": 5, "heartbeat_interval": 10}), "must exceed heartbeat"),
        (_config(study={"nmae": "x"}), r"study: unknown key\(s\) \['nmae'\]"),
        (_config(trial_records="some"), "trial_records must be 'all' or 'needed'"),
        (
            _config(
                trial_records="needed",
                tuner_pipeline=[{"name": "s", "spaces": ["topk_dropout"]}],
            ),
            "with trial_records: needed the trials leave PortAnaRecord out",
        ),
        (
            {
                "workflow": {**WORKFLOW, "task": {**WORKFLOW["task"], "record": []}},
                "tuner_pipeline": [TUNER],
                "optimization_criteria": {"metric": "1day.excess_return_with_cost.mean"},
            },
            "comes from PortAnaRecord, which the workflow's task.record does not list",
        ),
    ],
)
def test_invalid_tune_files(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_tune_config(data, "tune.yaml")


def test_trial_task_adds_or_keeps_records() -> None:
    config = parse_tune_config(_config(optimization_criteria={"metric": "Rank IC"}), "t")
    names = [r["class"] for r in trial_task(config.workflow, config.criterion, "all")["record"]]
    assert names == ["SignalRecord", "PortAnaRecord", "SigAnaRecord"]
    names = [r["class"] for r in trial_task(config.workflow, config.criterion, "needed")["record"]]
    assert names == ["SignalRecord", "SigAnaRecord"]
    model = parse_tune_config(
        _config(optimization_criteria={"report_type": "model", "report_factor": "valid.l2"}), "t"
    )
    assert trial_task(model.workflow, model.criterion, "needed")["record"] == []
    assert config.workflow["task"]["record"][0]["class"] == "SignalRecord"  # not modified


def test_example_tune_file_is_valid() -> None:
    example = Path(__file__).parents[2] / "examples" / "tune_lightgbm_alpha158.yaml"
    config = load_tune_config(example)
    assert [t.name for t in config.tuners] == ["model", "portfolio"]
    assert config.criterion.metric == "1day.excess_return_with_cost.information_ratio"


@pytest.mark.parametrize(
    ("model", "preset"),
    [("MLPModel", "mlp"), ("GRU", "gru"), ("ALSTM", "alstm"), ("LGBModel", "lightgbm")],
)
def test_ready_made_model_spaces_fit_their_models(model: str, preset: str) -> None:
    import inspect

    import alphalab.model

    workflow = {**WORKFLOW, "task": {**WORKFLOW["task"], "model": {"class": model, "kwargs": {}}}}
    config = parse_tune_config(
        {"workflow": workflow, "tuner_pipeline": [{"name": "m", "spaces": [preset]}]}, "t"
    )
    accepted = inspect.signature(getattr(alphalab.model, model)).parameters
    for path in config.tuners[0].space:
        key = path.split(".")[3]
        assert key in accepted or "kwargs" in accepted, (model, path)
