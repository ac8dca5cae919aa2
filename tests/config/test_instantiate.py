from __future__ import annotations

import datetime
import fractions
from collections import OrderedDict
from pathlib import Path

import pytest

from alphalab.config import (
    QLIB_MODULE_ALIASES,
    _aliases,
    fill_placeholders,
    flatten_dict,
    init_instance_by_config,
)
from alphalab.exceptions import ConfigError

USER_MODULE = """\
class Scaler:
    def __init__(self, *, factor: float = 1.0, model=None):
        self.factor = factor
        self.model = model

    def __call__(self, x):
        return x * self.factor
"""


@pytest.fixture
def user_module(tmp_path: Path) -> Path:
    file = tmp_path / "my_components.py"
    file.write_text(USER_MODULE)
    return file


def test_builds_from_component_mapping() -> None:
    obj = init_instance_by_config(
        {"class": "timedelta", "module_path": "datetime", "kwargs": {"days": 2}}
    )
    assert obj == datetime.timedelta(days=2)


@pytest.mark.parametrize("spec", ["fractions:Fraction", "fractions.Fraction"])
def test_builds_from_strings(spec: str) -> None:
    assert init_instance_by_config(spec, numerator=3, denominator=6) == fractions.Fraction(1, 2)


def test_default_module_and_class_and_instance() -> None:
    assert init_instance_by_config("Fraction", default_module="fractions", numerator=2) == 2
    assert init_instance_by_config({"class": "Fraction"}, default_module=fractions) == 0
    assert init_instance_by_config(OrderedDict, a=1) == OrderedDict(a=1)
    instance = fractions.Fraction(1, 3)
    assert init_instance_by_config(instance) is instance
    accepted = OrderedDict(a=1)  # a mapping, but an accepted type: returned as is
    assert init_instance_by_config(accepted, accept_types=OrderedDict) is accepted


def test_module_path_may_be_a_python_file(user_module: Path) -> None:
    scaler = init_instance_by_config(
        {"class": "Scaler", "module_path": str(user_module), "kwargs": {"factor": 3}}
    )
    assert scaler(2) == 6
    again = init_instance_by_config({"class": "Scaler", "module_path": str(user_module)})
    assert type(again) is type(scaler)


def test_override_wins_over_kwargs(user_module: Path) -> None:
    config = {"class": "Scaler", "module_path": str(user_module), "kwargs": {"factor": 3}}
    assert init_instance_by_config(config, factor=5).factor == 5
    assert config["kwargs"] == {"factor": 3}, "the config must not be mutated"


def test_placeholders_are_replaced_in_nested_kwargs(user_module: Path) -> None:
    model = object()
    config = {
        "class": "Scaler",
        "module_path": str(user_module),
        "kwargs": {"model": {"inner": ["<MODEL>", 1]}},
    }
    scaler = init_instance_by_config(config, placeholders={"<MODEL>": model})
    assert scaler.model["inner"][0] is model


def test_unresolved_placeholder_is_an_error_with_its_path(user_module: Path) -> None:
    config = {
        "class": "Scaler",
        "module_path": str(user_module),
        "kwargs": {"model": {"strategy": {"signal": "<PRED>"}}},
    }
    with pytest.raises(
        ConfigError,
        match=r"Unresolved placeholder '<PRED>' at kwargs\.model\.strategy\.signal; "
        r"known placeholders: <MODEL>",
    ):
        init_instance_by_config(config, placeholders={"MODEL": 1})
    kept = init_instance_by_config(config, allow_unresolved=["<PRED>"])
    assert kept.model["strategy"]["signal"] == "<PRED>"


def test_dotted_self_references_resolve_against_the_root() -> None:
    root = {"dataset": {"kwargs": {"segments": {"train": ["2010-01-01", "2014-12-31"]}}}}
    filled = fill_placeholders({"fit_end_time": "<dataset.kwargs.segments.train.1>"}, root=root)
    assert filled == {"fit_end_time": "2014-12-31"}
    with pytest.raises(ConfigError, match=r"Unresolved placeholder '<dataset\.nope>' at x"):
        fill_placeholders({"x": "<dataset.nope>"}, root=root)


def test_missing_class_lists_what_the_module_provides() -> None:
    with pytest.raises(ConfigError, match=r"Module 'alphalab.config' has no class 'Nope'"):
        init_instance_by_config({"class": "Nope", "module_path": "alphalab.config"})


def test_bad_module_path_is_named() -> None:
    with pytest.raises(ConfigError, match=r"module_path 'no_such_pkg.models' cannot be imported"):
        init_instance_by_config({"class": "X", "module_path": "no_such_pkg.models"})
    with pytest.raises(ConfigError, match=r"is not an existing \.py file"):
        init_instance_by_config({"class": "X", "module_path": "/nowhere/models.py"})
    with pytest.raises(ConfigError, match=r"no module_path given and no default module"):
        init_instance_by_config({"class": "X"})


def test_unknown_component_keys_and_kwargs_are_errors(user_module: Path) -> None:
    with pytest.raises(ConfigError, match=r"Unknown key\(s\) \['kwarg'\]"):
        init_instance_by_config({"class": "Scaler", "module_path": "m", "kwarg": {}})
    with pytest.raises(
        ConfigError, match=r"Scaler got unknown parameter\(s\) \['facter'\]; it accepts: factor"
    ):
        init_instance_by_config(
            {"class": "Scaler", "module_path": str(user_module), "kwargs": {"facter": 2}}
        )


def test_qlib_module_paths_are_translated(
    user_module: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(_aliases.QLIB_MODULE_ALIASES, "qlib.contrib.model.gbdt", "fractions")
    assert init_instance_by_config(
        {"class": "Fraction", "module_path": "qlib.contrib.model.gbdt", "kwargs": {"numerator": 4}}
    ) == fractions.Fraction(4)
    with pytest.raises(
        ConfigError,
        match=r"Qlib class qlib\.contrib\.model\.gbdt\.Booster has no alphalab equivalent",
    ):
        init_instance_by_config({"class": "Booster", "module_path": "qlib.contrib.model.gbdt"})


def test_qlib_module_without_equivalent_says_so() -> None:
    with pytest.raises(
        ConfigError,
        match=r"Qlib module 'qlib.contrib.model.pytorch_tra' \(class 'TRAModel'\) has no "
        r"alphalab equivalent",
    ):
        init_instance_by_config(
            {"class": "TRAModel", "module_path": "qlib.contrib.model.pytorch_tra"}
        )


def test_alias_table_covers_the_qlib_benchmark_modules() -> None:
    for module in (
        "qlib.contrib.model.gbdt",
        "qlib.data.dataset",
        "qlib.contrib.data.handler",
        "qlib.workflow.record_temp",
        "qlib.contrib.strategy",
        "qlib.model.trainer",
    ):
        assert QLIB_MODULE_ALIASES[module].startswith("alphalab.")


def test_flatten_dict_uses_dotted_keys_and_keeps_lists() -> None:
    config = {
        "model": {"class": "LGBModel", "kwargs": {"learning_rate": 0.2}},
        "dataset": {"kwargs": {"segments": {"train": ["2008-01-01", "2014-12-31"]}}},
        "empty": {},
    }
    assert flatten_dict(config) == {
        "model.class": "LGBModel",
        "model.kwargs.learning_rate": 0.2,
        "dataset.kwargs.segments.train": ["2008-01-01", "2014-12-31"],
        "empty": {},
    }
