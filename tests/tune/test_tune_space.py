from __future__ import annotations

import optuna
import pytest

from alphalab.exceptions import ConfigError
from alphalab.tune import (
    PRESET_SPACES,
    get_path,
    parse_param,
    parse_space,
    preset_space,
    set_paths,
)
from alphalab.tune._space import check_path, decode_params, unshare

WORKFLOW = {
    "task": {
        "model": {"class": "LGBModel", "kwargs": {"learning_rate": 0.1}},
        "dataset": {"class": "DatasetH", "kwargs": {"segments": {"train": ["a", "b"]}}},
        "record": [
            {"class": "SignalRecord"},
            {
                "class": "alphalab.workflow.PortAnaRecord",
                "kwargs": {"config": {"strategy": {"kwargs": {"topk": 50, "n_drop": 5}}}},
            },
        ],
    }
}


def test_float_int_categorical_are_parsed_and_sampled() -> None:
    space = parse_space(
        {
            "task.model.kwargs.learning_rate": {
                "type": "float",
                "low": 0.01,
                "high": 0.3,
                "log": True,
            },
            "task.model.kwargs.num_leaves": {"type": "int", "low": 8, "high": 64, "step": 8},
            "task.model.kwargs.loss": ["mse", "binary"],
        },
        "t",
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        values = {path: p.suggest(trial) for path, p in space.items()}
        assert 0.01 <= values["task.model.kwargs.learning_rate"] <= 0.3
        assert values["task.model.kwargs.num_leaves"] in range(8, 65, 8)
        assert values["task.model.kwargs.loss"] in ("mse", "binary")
        study.tell(trial, 0.0)
    assert space["task.model.kwargs.num_leaves"].grid() == [8, 16, 24, 32, 40, 48, 56, 64]


def test_non_scalar_choices_are_sampled_by_index_and_decoded() -> None:
    labels = [["Ref($close, -2)/Ref($close, -1) - 1"], ["Ref($close, -6)/Ref($close, -1) - 1"]]
    param = parse_param("task.dataset.kwargs.handler.kwargs.label", labels, "t")
    assert param.by_index
    trial = optuna.trial.FixedTrial({"task.dataset.kwargs.handler.kwargs.label": 1})
    assert param.suggest(trial) == labels[1]
    assert decode_params({param.path: param}, {param.path: 0}) == {param.path: labels[0]}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "float", "low": 1}, "a float parameter needs 'high'"),
        ({"type": "floaty", "low": 0, "high": 1}, "'type' must be float, int or categorical"),
        ({"type": "float", "low": 2, "high": 1}, r"'low' \(2.0\) must not exceed 'high'"),
        ({"type": "float", "low": 0, "high": 1, "log": True}, "log-scale parameter needs 'low'"),
        ({"type": "float", "low": 0.1, "high": 1, "log": True, "step": 0.1}, "cannot be combined"),
        ({"type": "int", "low": 1.5, "high": 4}, "'low' must be an integer"),
        ({"type": "int", "low": 1, "high": 4, "step": 0}, "'step' must be > 0"),
        ({"type": "categorical", "choices": []}, "'choices' must be a non-empty list"),
        ({"type": "categorical", "choices": [1], "low": 0}, "takes only 'choices'"),
        ({"type": "float", "low": 0, "high": 1, "sd": 3}, r"unknown key\(s\) \['sd'\]"),
        ({"type": "int", "low": "a", "high": 3}, "'low' must be an integer; got 'a'"),
        ("0.1", "expected a mapping"),
    ],
)
def test_invalid_entries_name_the_key_path(spec: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_param("task.model.kwargs.x", spec, "tune.yaml: tuner_pipeline[0].space.x")
    assert "tune.yaml: tuner_pipeline[0].space.x" in str(info.value)


def test_paths_walk_mappings_indices_and_class_names() -> None:
    topk = "task.record.PortAnaRecord.kwargs.config.strategy.kwargs.topk"
    assert get_path(WORKFLOW, topk) == 50
    assert get_path(WORKFLOW, "task.record.1.kwargs.config.strategy.kwargs.n_drop") == 5
    assert get_path(WORKFLOW, "task.dataset.kwargs.segments.train.0") == "a"
    check_path(WORKFLOW, "task.model.kwargs.num_leaves")  # a new key of a mapping is fine
    with pytest.raises(ConfigError, match=r"task.model has no key 'kwarg' \(keys: class, kwargs\)"):
        check_path(WORKFLOW, "task.model.kwarg.num_leaves")
    with pytest.raises(ConfigError, match=r"has no item\(s\) of class 'SigAnaRecord'"):
        get_path(WORKFLOW, "task.record.SigAnaRecord.kwargs")
    with pytest.raises(ConfigError, match="index 5 is out of range"):
        get_path(WORKFLOW, "task.record.5")
    with pytest.raises(ConfigError, match="is a value"):
        check_path(WORKFLOW, "task.model.kwargs.learning_rate.x")
    # Inside kwargs, missing mappings are created (a model's nested options).
    check_path(WORKFLOW, "task.model.kwargs.pt_model_kwargs.dropout")
    out = set_paths(WORKFLOW, {"task.model.kwargs.pt_model_kwargs.dropout": 0.2})
    assert out["task"]["model"]["kwargs"]["pt_model_kwargs"] == {"dropout": 0.2}
    assert "pt_model_kwargs" not in WORKFLOW["task"]["model"]["kwargs"]


def test_set_paths_copies_and_unshares_yaml_aliases() -> None:
    shared = {"topk": 50}
    config = {"a": shared, "task": {"model": {"kwargs": shared}}}
    out = set_paths(config, {"task.model.kwargs.topk": 10, "task.model.kwargs.new": [1]})
    assert out["task"]["model"]["kwargs"] == {"topk": 10, "new": [1]}
    assert out["a"] == {"topk": 50}
    assert config["task"]["model"]["kwargs"] == {"topk": 50}
    copy = unshare(config)
    assert copy["a"] is not copy["task"]["model"]["kwargs"]


def test_presets_are_valid_and_unknown_names_list_the_available_ones() -> None:
    for name in PRESET_SPACES:
        assert preset_space(name, "t")
    space = preset_space("LightGBM", "t")
    assert "task.model.kwargs.num_leaves" in space
    with pytest.raises(ConfigError, match="unknown ready-made space 'xgboost'; available: alstm"):
        preset_space("xgboost", "t")


def test_grid_needs_a_step_for_floats() -> None:
    param = parse_param("task.x", {"type": "float", "low": 0.1, "high": 0.3}, "t")
    with pytest.raises(ConfigError, match="continuous float; give it a 'step'"):
        param.grid()
    stepped = parse_param("task.x", {"type": "float", "low": 0.1, "high": 0.3, "step": 0.1}, "t")
    assert stepped.grid() == [0.1, 0.2, 0.3]


def test_samplers_and_pruners_are_built_from_the_tuner() -> None:
    from alphalab.tune._config import parse_tuner
    from alphalab.tune._study import make_pruner, make_sampler, trial_budget

    space = {"task.model.kwargs.num_leaves": {"type": "int", "low": 4, "high": 12, "step": 4}}
    expected = {
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "grid": optuna.samplers.GridSampler,
    }
    for name, cls in expected.items():
        tuner = parse_tuner({"sampler": {"type": name, "seed": 1}, "space": space}, 0, "t")
        assert isinstance(make_sampler(tuner, 0), cls)
    grid = parse_tuner({"sampler": "grid", "n_trials": 10, "space": space}, 0, "t")
    assert trial_budget(grid) == 3
    pruners = {
        "median": optuna.pruners.MedianPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "none": optuna.pruners.NopPruner,
    }
    for name, cls in pruners.items():
        tuner = parse_tuner({"pruner": name, "space": space}, 0, "t")
        assert isinstance(make_pruner(tuner), cls)
    bad = parse_tuner({"pruner": {"type": "median", "warmup": 3}, "space": space}, 0, "t")
    with pytest.raises(ConfigError, match="tuner 'tuner0': invalid pruner option"):
        make_pruner(bad)
    bad = parse_tuner({"sampler": {"type": "tpe", "startup": 3}, "space": space}, 0, "t")
    with pytest.raises(ConfigError, match="tuner 'tuner0': invalid sampler option"):
        make_sampler(bad, 0)
