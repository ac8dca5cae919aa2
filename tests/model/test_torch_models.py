from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

from alphalab.data import DataHandlerLP, DatasetH, TSDatasetH
from alphalab.evaluate import calc_ic
from alphalab.exceptions import ConfigError
from alphalab.model import ALSTM, GRU, LSTM, MLPModel, training_reporter
from alphalab.model._torch._loop import evaluate

COMMON = {"GPU": None, "seed": 5, "n_jobs": 1}


def valid_ic(model, dataset) -> float:
    pred = model.predict(dataset, segment="valid")
    label = DatasetH.prepare(dataset, "valid", col_set="label", data_key=DataHandlerLP.DK_R)
    ic, _ = calc_ic(pred, label)
    return float(ic.mean())


@pytest.fixture(scope="module")
def ts_dataset(compact_dataset) -> TSDatasetH:
    return TSDatasetH(
        handler=compact_dataset.handler, segments=compact_dataset.segments, step_len=8
    )


def test_mlp_learns_restores_best_weights_and_is_deterministic(compact_dataset) -> None:
    points: list[tuple[int, dict[str, float]]] = []
    kwargs = dict(
        lr=0.002,
        max_steps=240,
        eval_steps=20,
        batch_size=1024,
        early_stop_rounds=4,
        pt_model_kwargs={"layers": (32,)},
        **COMMON,
    )
    model = MLPModel(**kwargs)
    with training_reporter(lambda step, m: points.append((step, dict(m)))):
        model.fit(compact_dataset)
    assert valid_ic(model, compact_dataset) > 0.01
    valid_losses = [m["valid.loss"] for _, m in points]
    best_round = int(np.argmin(valid_losses)) + 1
    assert model.history_["best_round"] == [best_round]
    samples = model._samples(compact_dataset, "valid", True)
    samples = samples.keep(np.isfinite(samples.get(np.arange(len(samples)))[1]))
    restored = evaluate(model.net_, samples, lambda x: x, model._loop_config())["loss"]
    assert restored == pytest.approx(min(valid_losses), rel=1e-5), "best round's weights kept"
    again = MLPModel(**kwargs).fit(compact_dataset)
    pd.testing.assert_series_equal(again.predict(compact_dataset), model.predict(compact_dataset))
    loaded = pickle.loads(pickle.dumps(model))
    pd.testing.assert_series_equal(loaded.predict(compact_dataset), model.predict(compact_dataset))


def test_mlp_checks_its_configuration(compact_dataset) -> None:
    with pytest.raises(ConfigError, match="input_dim is 99 but the dataset has 12 features"):
        MLPModel(pt_model_kwargs={"input_dim": 99}, max_steps=1, **COMMON).fit(compact_dataset)
    with pytest.raises(ConfigError, match="loss must be 'mse' or 'mae'; got 'huber'"):
        MLPModel(loss="huber", **COMMON).fit(compact_dataset)
    with pytest.raises(ConfigError, match="optimizer must be 'adam', 'adamw' or 'sgd'"):
        MLPModel(optimizer="lbfgs", max_steps=1, **COMMON).fit(compact_dataset)


@pytest.mark.parametrize("model_cls", [GRU, LSTM, ALSTM])
def test_recurrent_models_learn_on_sequences(ts_dataset, model_cls) -> None:
    model = model_cls(
        d_feat=12,
        hidden_size=16,
        num_layers=1,
        n_epochs=4,
        batch_size=256,
        early_stop=4,
        lr=0.005,
        **COMMON,
    )
    model.fit(ts_dataset)
    pred = model.predict(ts_dataset)
    assert pred.index.names == ["datetime", "instrument"]
    assert pred.notna().all() and pred.std() > 0
    assert len(model.history_["valid"]) == 4
    assert valid_ic(model, ts_dataset) > 0.01, "beats a constant predictor"


def test_gru_reads_alpha360_style_flat_features(compact_dataset) -> None:
    model = GRU(d_feat=6, hidden_size=8, num_layers=1, n_epochs=1, batch_size=1024, **COMMON)
    model.fit(compact_dataset)  # 12 flat features = 6 series x 2 days
    assert model.predict(compact_dataset).notna().all()
    with pytest.raises(ConfigError, match="12 flat features cannot be split into d_feat=5"):
        GRU(d_feat=5, n_epochs=1, **COMMON).fit(compact_dataset)
    with pytest.raises(ConfigError, match="ALSTM rnn_type must be 'GRU' or 'LSTM'"):
        ALSTM(d_feat=6, rnn_type="RNN", n_epochs=1, **COMMON).fit(compact_dataset)


def test_early_stopping_stops_before_the_epoch_budget(compact_dataset) -> None:
    model = GRU(
        d_feat=6,
        hidden_size=8,
        num_layers=1,
        n_epochs=40,
        batch_size=2048,
        lr=0.02,
        early_stop=1,
        **COMMON,
    )
    model.fit(compact_dataset)
    epochs_run = len(model.history_["valid"])
    assert epochs_run < 40
    assert model.history_["best_round"] == [epochs_run - 1], "stopped one epoch after the best"
