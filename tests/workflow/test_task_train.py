from __future__ import annotations

import pandas as pd
import pytest

import alphalab
from alphalab.exceptions import ConfigError, NotFoundError
from alphalab.tracking import R
from alphalab.workflow import SigAnaRecord, task_train


@pytest.fixture
def on_model_market(model_market_store, tracking_uri):
    alphalab.init(provider_uri=model_market_store.uri)
    return model_market_store


def test_task_train_records_everything_with_qlib_names(on_model_market, make_task) -> None:
    recorder = task_train(make_task(), experiment_name="tt")
    assert recorder.status.value == "FINISHED"
    artifacts = set(recorder.list_artifacts())
    assert {"pred.pkl", "label.pkl", "params.pkl", "task", "dataset"} <= artifacts
    assert {"sig_analysis/ic.pkl", "sig_analysis/ric.pkl", "sig_analysis/long_short_r.pkl"} <= set(
        recorder.list_artifacts("sig_analysis")
    )
    portfolio = set(recorder.list_artifacts("portfolio_analysis"))
    for name in (
        "report_normal",
        "positions_normal",
        "indicators_normal",
        "port_analysis",
        "indicator_analysis",
    ):
        assert f"portfolio_analysis/{name}_1day.pkl" in portfolio
    assert "report/report.html" in recorder.list_artifacts("report")

    pred = recorder.load_object("pred.pkl")
    assert list(pred.columns) == ["score"] and pred.index.names == ["datetime", "instrument"]
    label = recorder.load_object("label.pkl")
    assert list(label.columns) == ["LABEL0"]
    model = recorder.load_object("params.pkl")
    dataset = recorder.load_object("dataset")
    dataset.handler.setup_data(refit=False)
    pd.testing.assert_series_equal(model.predict(dataset), pred["score"], check_names=False)

    metrics = recorder.list_metrics()
    for key in (
        "IC",
        "ICIR",
        "Rank IC",
        "Rank ICIR",
        "Long-Short Ann Return",
        "1day.excess_return_with_cost.information_ratio",
        "1day.excess_return_without_cost.max_drawdown",
        "1day.ffr",
        "1day.pa",
        "1day.pos",
    ):
        assert key in metrics, key
    assert metrics["IC"] > 0
    params = recorder.list_params()
    assert params["model.class"] == "LinearModel"
    assert params["dataset.kwargs.segments.train"] == "['2017-01-01', '2018-12-31']"
    tags = recorder.list_tags()
    assert tags["train_status"] == "end_task_train"
    assert len(tags["data_fingerprint"]) == 32
    report = recorder.load_object("portfolio_analysis/report_normal_1day.pkl")
    assert list(report.columns) == [
        "account",
        "return",
        "total_turnover",
        "turnover",
        "total_cost",
        "cost",
        "value",
        "cash",
        "bench",
    ]


def test_failing_task_ends_failed(on_model_market, make_task) -> None:
    task = make_task(
        model={
            "class": "LinearModel",
            "module_path": "alphalab.model",
            "kwargs": {"estimator": "svm"},
        }
    )
    with pytest.raises(ConfigError, match="estimator must be one of"):
        task_train(task, experiment_name="tt-fail")
    runs = R.list_recorders(experiment_name="tt-fail")
    assert [r.status.value for r in runs.values()] == ["FAILED"]


def test_record_needing_a_missing_artifact_says_which(on_model_market) -> None:
    with (
        R.start(experiment_name="missing"),
        pytest.raises(
            NotFoundError, match=r"SigAnaRecord needs 'pred\.pkl', written by SignalRecord"
        ),
    ):
        SigAnaRecord().generate()


def test_training_curves_reach_the_run(on_model_market, make_task) -> None:
    task = make_task(
        model={
            "class": "LGBModel",
            "module_path": "alphalab.model",
            "kwargs": {
                "num_boost_round": 12,
                "early_stopping_rounds": None,
                "num_leaves": 7,
                "num_threads": 1,
            },
        },
        records=[],
    )
    recorder = task_train(task, experiment_name="curves")
    history = recorder.metric_history("valid.l2")
    assert list(history["step"]) == list(range(1, 13))
    assert history["value"].notna().all()
    assert len(recorder.metric_history("train.l2")) == 12
