from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import polars as pl
import pytest

from alphalab.data import DataHandlerLP, DatasetH, QlibDataLoader
from alphalab.evaluate import calc_ic
from alphalab.exceptions import ConfigError, DataError
from alphalab.model import DEnsembleModel, LGBModel, LinearModel, training_reporter

FAST_LGB = {
    "learning_rate": 0.05,
    "num_leaves": 15,
    "num_threads": 2,
    "seed": 3,
    "min_data_in_leaf": 50,
    "colsample_bytree": 0.8,
}


def valid_ic(model, dataset) -> float:
    pred = model.predict(dataset, segment="valid")
    label = dataset.prepare("valid", col_set="label", data_key=DataHandlerLP.DK_R)
    ic, _ = calc_ic(pred, label)
    return float(ic.mean())


@pytest.fixture(scope="module")
def fitted_lgb(alpha158_dataset) -> tuple[LGBModel, list[tuple[int, dict[str, float]]]]:
    points: list[tuple[int, dict[str, float]]] = []
    model = LGBModel(num_boost_round=300, early_stopping_rounds=20, **FAST_LGB)
    with training_reporter(lambda step, metrics: points.append((step, dict(metrics)))):
        model.fit(alpha158_dataset)
    return model, points


def test_lgb_beats_a_constant_and_stops_early(fitted_lgb, alpha158_dataset) -> None:
    model, points = fitted_lgb
    assert valid_ic(model, alpha158_dataset) > 0.01
    booster = model.booster_
    assert booster is not None
    assert 0 < booster.best_iteration < 300, "early stopping ended training before the cap"
    steps = [s for s, _ in points]
    assert steps == list(range(1, booster.best_iteration + 20 + 1)), "patience of 20 rounds"
    assert booster.current_iteration() == booster.best_iteration, "trees after the best dropped"
    assert {"train.l2", "valid.l2"} <= set(points[0][1])


def test_lgb_predictions_use_the_best_iteration_and_pickle(fitted_lgb, alpha158_dataset) -> None:
    model, _ = fitted_lgb
    pred = model.predict(alpha158_dataset)
    assert pred.index.names == ["datetime", "instrument"]
    assert pred.index.get_level_values("datetime").min() >= pd.Timestamp("2020-01-01")
    x = alpha158_dataset.prepare("test", col_set="feature")
    best = model.booster_.predict(x.to_numpy(), num_iteration=model.booster_.best_iteration)
    np.testing.assert_allclose(pred.to_numpy(), best)
    again = pickle.loads(pickle.dumps(model))
    pd.testing.assert_series_equal(again.predict(alpha158_dataset), pred)
    importance = model.get_feature_importance()
    assert len(importance) == 158 and importance.iloc[0] >= importance.iloc[-1]


def test_lgb_finetune_adds_rounds(alpha158_dataset) -> None:
    model = LGBModel(num_boost_round=5, early_stopping_rounds=None, **FAST_LGB)
    model.fit(alpha158_dataset)
    model.finetune(alpha158_dataset, num_boost_round=3)
    assert model.booster_.current_iteration() == 8


def test_lgb_errors() -> None:
    with pytest.raises(
        ConfigError, match=r"LGBModel loss must be one of \['binary', 'mse'\]; got 'huber'"
    ):
        LGBModel(loss="huber")._lgb_params()
    with pytest.raises(DataError, match="not fitted yet"):
        LGBModel().predict(None)


def test_lgb_needs_a_train_segment_and_finite_labels(alpha158_dataset) -> None:
    no_train = DatasetH(
        handler=alpha158_dataset.handler, segments={"test": ["2020-01-01", "2020-12-31"]}
    )
    with pytest.raises(DataError, match="needs a 'train' segment"):
        LGBModel().fit(no_train)

    class NanLabels(DatasetH):
        def prepare_chunks(self, segment, col_set="__all", data_key="infer", rows=50_000):
            for k, frame in enumerate(super().prepare_chunks(segment, col_set, data_key, 500)):
                if segment == "train" and k in (1, 3):  # 2 + 1 NaN in two of the pieces
                    label = frame["label/LABEL0"].to_numpy().copy()
                    label[: 2 if k == 1 else 1] = np.nan
                    frame = frame.with_columns(pl.Series("label/LABEL0", label))
                yield frame

    bad = NanLabels(handler=alpha158_dataset.handler, segments=alpha158_dataset.segments)
    with pytest.raises(DataError, match=r"The 'train' segment has 3 NaN/inf label\(s\)"):
        LGBModel(num_boost_round=2).fit(bad)


@pytest.mark.parametrize(("estimator", "alpha"), [("ols", 0.0), ("ridge", 10.0), ("nnls", 0.0)])
def test_linear_models(compact_dataset, estimator: str, alpha: float) -> None:
    model = LinearModel(estimator=estimator, alpha=alpha).fit(compact_dataset)
    assert model.coef_ is not None and model.coef_.shape == (12,)
    if estimator == "nnls":
        assert (model.coef_ >= 0).all()
    assert valid_ic(model, compact_dataset) > 0
    again = pickle.loads(pickle.dumps(model))
    pd.testing.assert_series_equal(again.predict(compact_dataset), model.predict(compact_dataset))


def test_linear_model_errors(compact_dataset) -> None:
    with pytest.raises(ConfigError, match="estimator must be one of"):
        LinearModel(estimator="svm").fit(compact_dataset)
    with pytest.raises(ConfigError, match="ridge needs alpha > 0"):
        LinearModel(estimator="ridge").fit(compact_dataset)


def test_double_ensemble(compact_dataset) -> None:
    model = DEnsembleModel(
        num_models=3, epochs=30, bins_fs=3, sample_ratios=[0.8, 0.7, 0.6], **FAST_LGB
    )
    model.fit(compact_dataset)
    assert len(model.models_) == 3
    assert len(model.sub_features_[0]) == 12
    assert len(model.sub_features_[1]) < 12, "feature selection dropped features"
    assert valid_ic(model, compact_dataset) > 0.01
    again = pickle.loads(pickle.dumps(model))
    pd.testing.assert_series_equal(again.predict(compact_dataset), model.predict(compact_dataset))
    with pytest.raises(ConfigError, match="sample_ratios needs 5 values"):
        DEnsembleModel(sample_ratios=[0.5]).fit(compact_dataset)


def test_double_ensemble_reweighting_favours_hard_but_learnable_samples() -> None:
    curve = np.array(
        [
            [1.0, 0.5, 0.1],  # learned well
            [1.0, 0.9, 0.8],  # barely learned
            [1.0, 0.6, 0.3],
            [1.0, 0.95, 0.9],
        ]
    )
    ensemble_loss = np.array([0.01, 0.02, 0.5, 0.9])
    weights = DEnsembleModel(bins_sr=2)._reweight(curve, ensemble_loss, k=1, decay=0.5)
    assert weights.shape == (4,)
    # h = rank(-ensemble loss) + rank(loss drop): [1.25, 1.5, 1.0, 1.25]; two bins.
    np.testing.assert_allclose(
        weights, [1 / (0.5 * 4 / 3 + 0.1)] * 2 + [1 / 0.6, 1 / (0.5 * 4 / 3 + 0.1)]
    )
    assert weights[0] < weights[2], "samples the ensemble already fits get less weight"


def test_lgb_trains_on_features_named_by_their_expressions(model_market_store) -> None:
    # LightGBM rejects feature names with JSON punctuation; expressions are full of commas
    features = ["$close/Ref($close, 1) - 1", "Mean($close, 5)/$close", "Std($volume, 10)"]
    handler = DataHandlerLP(
        instruments="csi300",
        start_time="2017-01-01",
        end_time="2020-12-31",
        data_loader=QlibDataLoader(
            config={"feature": features, "label": (["Ref($close, -2)/Ref($close, -1) - 1"], ["Y"])}
        ),
        learn_processors=["DropnaLabel"],
        store=model_market_store,
        cache=False,
    )
    segments = {"train": ["2017-01-01", "2018-12-31"], "valid": ["2019-01-01", "2019-12-31"]}
    dataset = DatasetH(handler=handler, segments={**segments, "test": ["2020-01-01", "2020-12-31"]})
    model = LGBModel(num_boost_round=5, num_leaves=7, num_threads=1).fit(dataset)
    assert sorted(model.get_feature_importance().index) == sorted(features)
    assert model.predict(dataset).notna().all()
