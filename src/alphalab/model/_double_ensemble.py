"""DoubleEnsemble (Zhang et al., 2020) under Qlib's ``DEnsembleModel`` name and kwargs.

LightGBM sub-models are trained one after another. Each new one is trained with sample weights
that shrink for samples the ensemble already fits well and for samples whose loss barely fell
while the previous sub-model trained (likely noise), and on a feature subset drawn mostly from
the features whose shuffling hurts the ensemble most. Predictions are the
``sub_weights``-weighted sum of the sub-models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from alphalab._training import report_training
from alphalab.data.handler import DataHandlerLP
from alphalab.exceptions import ConfigError, DataError
from alphalab.model._base import Model, check_labels, segment_names


def _rank_pct(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Percentile ranks in (0, 1] along ``axis`` (ties share their average rank)."""
    frame = pd.DataFrame(values) if values.ndim == 2 else pd.Series(values)
    if values.ndim == 2 and axis == 0:
        return frame.rank(axis=0, pct=True).to_numpy()
    return frame.rank(pct=True).to_numpy()


class DEnsembleModel(Model):
    """DoubleEnsemble over LightGBM sub-models.

    Args:
        base_model: Only ``"gbm"`` (LightGBM).
        loss: Only ``"mse"``.
        num_models: Number of sub-models.
        enable_sr: Use sample reweighting.
        enable_fs: Use feature selection.
        alpha1: Weight of the "already well fitted" score in reweighting.
        alpha2: Weight of the "loss did not fall" score in reweighting.
        bins_sr: Number of bins of samples for reweighting.
        bins_fs: Number of bins of features for selection.
        decay: Shrinks the reweighting over sub-models (weight ~ 1 / (decay**k * h + 0.1)).
        sample_ratios: Fraction of features drawn from each feature bin (best bin first).
        sub_weights: Weight of each sub-model in the prediction.
        epochs: Boosting rounds per sub-model.
        early_stopping_rounds: Early stopping on ``valid`` per sub-model (None: off).
        **kwargs: LightGBM parameters for every sub-model.
    """

    def __init__(
        self,
        base_model: str = "gbm",
        loss: str = "mse",
        num_models: int = 6,
        enable_sr: bool = True,
        enable_fs: bool = True,
        alpha1: float = 1.0,
        alpha2: float = 1.0,
        bins_sr: int = 10,
        bins_fs: int = 5,
        decay: float | None = None,
        sample_ratios: Sequence[float] | None = None,
        sub_weights: Sequence[float] | None = None,
        epochs: int = 100,
        early_stopping_rounds: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.base_model = base_model
        self.loss = loss
        self.num_models = num_models
        self.enable_sr = enable_sr
        self.enable_fs = enable_fs
        self.alpha1 = alpha1
        self.alpha2 = alpha2
        self.bins_sr = bins_sr
        self.bins_fs = bins_fs
        self.decay = decay
        self.sample_ratios = sample_ratios
        self.sub_weights = sub_weights
        self.epochs = epochs
        self.early_stopping_rounds = early_stopping_rounds
        self.params = kwargs
        self.models_: list[lgb.Booster] = []
        self.sub_features_: list[list[int]] = []
        self.feature_names_: list[str] = []

    def _checked(self) -> tuple[float, list[float], list[float]]:
        if self.base_model != "gbm":
            raise ConfigError(f"DEnsembleModel base_model must be 'gbm'; got {self.base_model!r}")
        if self.loss != "mse":
            raise ConfigError(f"DEnsembleModel loss must be 'mse'; got {self.loss!r}")
        if self.num_models < 1:
            raise ConfigError(f"DEnsembleModel num_models must be >= 1; got {self.num_models}")
        ratios = list(self.sample_ratios or [0.8, 0.7, 0.6, 0.5, 0.4][: self.bins_fs])
        if len(ratios) != self.bins_fs:
            raise ConfigError(
                f"DEnsembleModel sample_ratios needs {self.bins_fs} values (one per feature "
                f"bin); got {len(ratios)}"
            )
        weights = list(self.sub_weights or [1.0] * self.num_models)
        if len(weights) != self.num_models:
            raise ConfigError(
                f"DEnsembleModel sub_weights needs {self.num_models} values; got {len(weights)}"
            )
        return (0.5 if self.decay is None else self.decay), ratios, weights

    def fit(
        self, dataset: Any, evals_result: dict[str, Any] | None = None, reweighter: Any = None
    ) -> DEnsembleModel:
        """Train the sub-models one after the other on ``train`` (valid for early stopping)."""
        decay, ratios, weights = self._checked()
        names = segment_names(dataset)
        if "train" not in names:
            raise DataError("DEnsembleModel.fit needs a 'train' segment in the dataset")
        segments = ["train", "valid"] if "valid" in names else ["train"]
        frames = dataset.prepare(
            segments, col_set=["feature", "label"], data_key=DataHandlerLP.DK_L
        )
        x_train = frames[0]["feature"].to_numpy()
        y_train = frames[0]["label"].to_numpy().ravel()
        check_labels(y_train, "train")
        self.feature_names_ = [str(c) for c in frames[0]["feature"].columns]
        valid = None
        if len(frames) > 1:
            y_valid = frames[1]["label"].to_numpy().ravel()
            check_labels(y_valid, "valid")
            valid = (frames[1]["feature"].to_numpy(), y_valid)
        rng = np.random.default_rng(self.params.get("seed", 0))
        n_samples, n_features = x_train.shape
        sample_weight = np.ones(n_samples)
        features = list(range(n_features))
        ensemble_pred = np.zeros(n_samples)
        total_weight = 0.0
        self.models_, self.sub_features_ = [], []
        for k in range(self.num_models):
            booster = self._train_sub(x_train, y_train, sample_weight, features, valid, k)
            self.models_.append(booster)
            self.sub_features_.append(features)
            curve = self._loss_curve(booster, x_train[:, features], y_train)
            ensemble_pred = ensemble_pred + weights[k] * curve[1]
            total_weight += weights[k]
            if k + 1 == self.num_models:
                break
            ensemble = ensemble_pred / total_weight
            if self.enable_sr:
                sample_weight = self._reweight(curve[0], (ensemble - y_train) ** 2, k + 1, decay)
            if self.enable_fs:
                features = self._select_features(
                    x_train, y_train, ensemble_pred, total_weight, ratios, rng
                )
        if evals_result is not None:
            evals_result["sub_models"] = len(self.models_)
        return self

    def _train_sub(
        self,
        x: np.ndarray,
        y: np.ndarray,
        weight: np.ndarray,
        features: list[int],
        valid: tuple[np.ndarray, np.ndarray] | None,
        k: int,
    ) -> lgb.Booster:
        train = lgb.Dataset(x[:, features], label=y, weight=weight)
        params = {"objective": "regression", "verbosity": -1, **self.params}
        sets, set_names = [train], ["train"]
        callbacks: list[Any] = []
        if valid is not None:
            sets.append(lgb.Dataset(valid[0][:, features], label=valid[1], reference=train))
            set_names.append("valid")
            if self.early_stopping_rounds:
                callbacks.append(lgb.early_stopping(self.early_stopping_rounds, verbose=False))

        def on_round(env: Any) -> None:
            step = k * self.epochs + env.iteration + 1
            metrics = {f"{n}.{m}": v for n, m, v, *_ in env.evaluation_result_list}
            report_training(step, {**metrics, "sub_model": float(k)})

        callbacks.append(on_round)
        return lgb.train(
            params,
            train,
            num_boost_round=self.epochs,
            valid_sets=sets,
            valid_names=set_names,
            callbacks=callbacks,
        )

    @staticmethod
    def _loss_curve(
        booster: lgb.Booster, x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-sample squared error after each boosting round, and the final prediction."""
        rounds = booster.current_iteration()
        curve = np.empty((len(y), rounds))
        pred = np.zeros(len(y))
        for t in range(rounds):
            pred = pred + np.asarray(booster.predict(x, start_iteration=t, num_iteration=1))
            curve[:, t] = (pred - y) ** 2
        return curve, pred

    def _reweight(
        self, curve: np.ndarray, ensemble_loss: np.ndarray, k: int, decay: float
    ) -> np.ndarray:
        """Sample weights from the previous sub-model's loss curve and the ensemble's loss."""
        ranked = _rank_pct(curve, axis=0)
        edge = max(int(curve.shape[1] * 0.1), 1)
        start = ranked[:, :edge].mean(axis=1)
        end = ranked[:, -edge:].mean(axis=1)
        well_fitted = _rank_pct(-ensemble_loss)
        not_learned = _rank_pct(end / start)
        h = self.alpha1 * well_fitted + self.alpha2 * not_learned
        edges = np.linspace(h.min(), h.max(), self.bins_sr + 1)
        bins = np.clip(np.searchsorted(edges, h, side="right") - 1, 0, self.bins_sr - 1)
        weights = np.empty_like(h)
        for b in np.unique(bins):
            members = bins == b
            weights[members] = 1.0 / (decay**k * h[members].mean() + 0.1)
        return weights

    def _select_features(
        self,
        x: np.ndarray,
        y: np.ndarray,
        ensemble_pred: np.ndarray,
        total_weight: float,
        ratios: list[float],
        rng: np.random.Generator,
    ) -> list[int]:
        """Draw features, favouring those whose shuffling raises the ensemble's loss most."""
        base_loss = (ensemble_pred / total_weight - y) ** 2
        scores = np.empty(x.shape[1])
        shuffled = x.copy()
        ensemble = list(zip(self.models_, self.sub_features_, self._weights(), strict=False))
        weight_sum = sum(w for _, _, w in ensemble)
        for j in range(x.shape[1]):
            shuffled[:, j] = rng.permutation(x[:, j])
            pred = np.zeros(len(y))
            for booster, cols, w in ensemble:
                pred += w * np.asarray(booster.predict(shuffled[:, cols]))
            shuffled[:, j] = x[:, j]
            diff = (pred / weight_sum - y) ** 2 - base_loss
            scores[j] = diff.mean() / (diff.std() + 1e-12)
        order = np.argsort(-scores)
        chosen: list[int] = []
        for ratio, members in zip(ratios, np.array_split(order, self.bins_fs), strict=True):
            take = int(np.ceil(ratio * len(members)))
            if take:
                chosen.extend(rng.choice(members, size=take, replace=False).tolist())
        return sorted(chosen)

    def _weights(self) -> list[float]:
        return list(self.sub_weights or [1.0] * self.num_models)

    def predict(self, dataset: Any, segment: str = "test") -> pd.Series:
        """The ``sub_weights``-weighted sum of the sub-models' predictions."""
        if not self.models_:
            raise DataError("DEnsembleModel is not fitted yet; call fit(dataset) first")
        x = dataset.prepare(segment, col_set="feature", data_key=DataHandlerLP.DK_I)
        values = x.to_numpy()
        pred = np.zeros(len(values))
        weights = self._weights()
        for booster, cols, w in zip(self.models_, self.sub_features_, weights, strict=False):
            pred += w * np.asarray(booster.predict(values[:, cols]))
        return pd.Series(pred / sum(weights[: len(self.models_)]), index=x.index, name="score")
