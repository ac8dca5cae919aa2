from __future__ import annotations

from pathlib import Path

import pytest

from alphalab.config import load_config_file, load_workflow, parse_yaml, validate_workflow
from alphalab.exceptions import ConfigError, NotFoundError

QLIB_STYLE = """\
qlib_init:
    provider_uri: "~/.qlib/qlib_data/cn_data"
    region: cn
market: &market csi300
benchmark: &benchmark SH000300
data_handler_config: &data_handler_config
    start_time: 2008-01-01
    end_time: 2020-08-01
    instruments: *market
port_analysis_config: &port_analysis_config
    strategy:
        class: TopkDropoutStrategy
        module_path: qlib.contrib.strategy
        kwargs:
            signal: <PRED>
            topk: 50
            n_drop: 5
    backtest:
        benchmark: *benchmark
task:
    model:
        class: LGBModel
        module_path: qlib.contrib.model.gbdt
        kwargs:
            loss: mse
            learning_rate: 0.2
    dataset:
        class: DatasetH
        module_path: qlib.data.dataset
        kwargs:
            handler:
                class: Alpha158
                module_path: qlib.contrib.data.handler
                kwargs: *data_handler_config
            segments:
                train: [2008-01-01, 2014-12-31]
    record:
        - class: SignalRecord
          module_path: qlib.workflow.record_temp
          kwargs:
            model: <MODEL>
            dataset: <DATASET>
        - class: PortAnaRecord
          module_path: qlib.workflow.record_temp
          kwargs:
            config: *port_analysis_config
"""


def test_qlib_benchmark_shape_validates_with_anchors_kept(tmp_path: Path) -> None:
    file = tmp_path / "workflow.yaml"
    file.write_text(QLIB_STYLE)
    raw, config = load_workflow(file)
    handler_kwargs = raw["task"]["dataset"]["kwargs"]["handler"]["kwargs"]
    assert handler_kwargs["instruments"] == "csi300"
    assert config.task.model.class_ == "LGBModel"
    assert [r.class_ for r in config.task.record] == ["SignalRecord", "PortAnaRecord"]
    strategy = config.task.record[1].kwargs["config"]["strategy"]
    assert strategy["kwargs"]["signal"] == "<PRED>"
    assert config.settings["region"] == "cn"
    assert config.settings["provider_uri"].endswith(".qlib/qlib_data/cn_data")


def test_record_may_be_a_single_component_or_dotted_string() -> None:
    base = {"task": {"model": "a.b.M", "dataset": {"class": "D", "module_path": "m"}}}
    config = validate_workflow({**base, "task": {**base["task"], "record": "x.y.SignalRecord"}})
    assert config.task.model.class_ == "M"
    assert config.task.model.module_path == "a.b"
    assert config.task.record[0].class_ == "SignalRecord"
    assert config.task.record[0].module_path == "x.y"


def test_yaml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text("task:\n  model: {class: LGBModel\n  dataset: x\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml:3:\d+: YAML syntax error"):
        load_config_file(file)


def test_schema_errors_name_file_key_path_and_expectation(tmp_path: Path) -> None:
    file = tmp_path / "wf.yaml"
    file.write_text(
        "qlib_init: {region: mars}\n"
        "task:\n"
        "  model: {module_path: qlib.contrib.model.gbdt}\n"
        "  dataset: {class: DatasetH, kwarg: {}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_workflow(file)
    text = str(info.value)
    assert (
        f"{file}: qlib_init: The 'region' setting must be one of ('cn', 'us'); got 'mars'" in text
    )
    assert f"{file}: task.model.class: Field required" in text
    assert f"{file}: task.dataset.kwarg: Extra inputs are not permitted" in text


def test_missing_task_and_both_inits_are_errors() -> None:
    with pytest.raises(ConfigError, match=r"<wf>: task: Field required"):
        validate_workflow({"experiment_name": "x"}, "<wf>")
    config = {"init": {}, "qlib_init": {}, "task": {"model": "m.M", "dataset": "m.D"}}
    with pytest.raises(ConfigError, match=r"either 'qlib_init' or 'init', not both"):
        validate_workflow(config)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    file = tmp_path / "list.yaml"
    file.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: the top level must be a mapping; got list"):
        load_config_file(file)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match=r"the file is empty"):
        load_config_file(empty)
    with pytest.raises(NotFoundError, match=r"Config file not found: .*nope\.yaml"):
        load_config_file(tmp_path / "nope.yaml")


def test_base_config_inheritance_deep_merges_child_wins(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "base.yaml").write_text(
        "experiment_name: base\n"
        "task:\n"
        "  model: {class: M, module_path: m, kwargs: {lr: 0.1, leaves: 31}}\n"
        "  dataset: {class: D, module_path: m}\n"
    )
    child = tmp_path / "child.yaml"
    child.write_text("BASE_CONFIG_PATH: base/base.yaml\ntask:\n  model:\n    kwargs: {lr: 0.05}\n")
    merged = load_config_file(child)
    assert "BASE_CONFIG_PATH" not in merged
    assert merged["experiment_name"] == "base"
    assert merged["task"]["model"]["kwargs"] == {"lr": 0.05, "leaves": 31}
    assert merged["task"]["dataset"]["class"] == "D"


def test_base_config_cycle_and_missing_base(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("BASE_CONFIG_PATH: b.yaml\n")
    (tmp_path / "b.yaml").write_text("BASE_CONFIG_PATH: a.yaml\n")
    with pytest.raises(ConfigError, match=r"BASE_CONFIG_PATH forms a cycle"):
        load_config_file(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("BASE_CONFIG_PATH: missing.yaml\n")
    with pytest.raises(NotFoundError, match=r"BASE_CONFIG_PATH 'missing\.yaml' not found"):
        load_config_file(tmp_path / "c.yaml")


def test_merge_keys_are_supported() -> None:
    data = parse_yaml("a: &a {x: 1, y: 2}\nb:\n  <<: *a\n  y: 3\n")
    assert data["b"] == {"x": 1, "y": 3}
