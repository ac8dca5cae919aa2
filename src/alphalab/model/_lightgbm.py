"""LightGBM regression/classification on a dataset's flat features (Qlib's ``LGBModel``)."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from alphalab._progress import make_progress
from alphalab._training import report_training
from alphalab.data.handler import DataHandlerLP
from alphalab.exceptions import ConfigError, DataError
from alphalab.model._base import ModelFT, check_labels, segment_names

_OBJECTIVES = {"mse": "regression", "binary": "binary"}


def _xy(frame: pd.DataFrame, segment: str) -> tuple[pd.DataFrame, np.ndarray]:
    x, y = frame["feature"], frame["label"]
    if y.shape[1] != 1:
        raise DataError(
            f"LGBModel trains on one label column; the {segment!r} segment has {y.shape[1]} "
            f"({list(y.columns)})"
        )
    labels = y.to_numpy().ravel()
    check_labels(labels, segment)
    return x, labels


class LGBModel(ModelFT):
    """Gradient-boosted trees with early stopping on the ``valid`` segment.

    Args:
        loss: ``"mse"`` (regression) or ``"binary"``.
        early_stopping_rounds: Stop when the valid metric has not improved for this many
            rounds (only with a ``valid`` segment).
        num_boost_round: Maximum number of boosting rounds.
        **kwargs: Any LightGBM parameter (``learning_rate``, ``num_leaves``, ``lambda_l1``,
            ``num_threads``, ``colsample_bytree``...).
    """

    def __init__(
        self,
        loss: str = "mse",
        early_stopping_rounds: int | None = 50,
        num_boost_round: int = 1000,
        **kwargs: Any,
    ) -> None:
        self.loss = loss
        self.early_stopping_rounds = early_stopping_rounds
        self.num_boost_round = num_boost_round
        self.params = kwargs
        self.booster_: lgb.Booster | None = None
        self.feature_names_: list[str] = []

    def _lgb_params(self) -> dict[str, Any]:
        if self.loss not in _OBJECTIVES:
            raise ConfigError(
                f"LGBModel loss must be one of {sorted(_OBJECTIVES)}; got {self.loss!r}"
            )
        return {"objective": _OBJECTIVES[self.loss], "verbosity": -1, **self.params}

    def _datasets(self, dataset: Any, reweighter: Any) -> tuple[lgb.Dataset, lgb.Dataset | None]:
        if "train" not in segment_names(dataset):
            raise DataError("LGBModel.fit needs a 'train' segment in the dataset")
        has_valid = "valid" in segment_names(dataset)
        frames = dataset.prepare(
            ["train", "valid"] if has_valid else ["train"],
            col_set=["feature", "label"],
            data_key=DataHandlerLP.DK_L,
        )
        x_train, y_train = _xy(frames[0], "train")
        self.feature_names_ = [str(c) for c in x_train.columns]
        weight = None if reweighter is None else np.asarray(reweighter.reweight(frames[0]))
        train = lgb.Dataset(x_train.to_numpy(), label=y_train, weight=weight, free_raw_data=True)
        if not has_valid:
            return train, None
        x_valid, y_valid = _xy(frames[1], "valid")
        return train, lgb.Dataset(x_valid.to_numpy(), label=y_valid, reference=train)

    def fit(
        self,
        dataset: Any,
        evals_result: dict[str, Any] | None = None,
        reweighter: Any = None,
        num_boost_round: int | None = None,
        early_stopping_rounds: int | None = None,
        verbose_eval: int = 20,
        init_model: lgb.Booster | None = None,
    ) -> LGBModel:
        """Train on ``train``, early-stopping on ``valid``; curves go to the training reporter."""
        train, valid = self._datasets(dataset, reweighter)
        rounds = num_boost_round if num_boost_round is not None else self.num_boost_round
        patience = (
            early_stopping_rounds
            if early_stopping_rounds is not None
            else self.early_stopping_rounds
        )
        record: dict[str, Any] = {}
        callbacks: list[Any] = [lgb.record_evaluation(record)]
        valid_sets, valid_names = [train], ["train"]
        if valid is not None:
            valid_sets.append(valid)
            valid_names.append("valid")
            if patience:
                callbacks.append(lgb.early_stopping(patience, verbose=False))
        with make_progress() as progress:
            task = progress.add_task("Training LightGBM", total=rounds)

            def on_round(env: Any) -> None:
                progress.advance(task)
                report_training(
                    env.iteration + 1,
                    {
                        f"{name}.{metric}": value
                        for name, metric, value, *_ in env.evaluation_result_list
                    },
                )

            callbacks.append(on_round)
            self.booster_ = lgb.train(
                self._lgb_params(),
                train,
                num_boost_round=rounds,
                valid_sets=valid_sets,
                valid_names=valid_names,
                callbacks=callbacks,
                init_model=init_model,
            )
        if evals_result is not None:
            evals_result.update(record)
        return self

    def finetune(self, dataset: Any, num_boost_round: int = 10, **kwargs: Any) -> LGBModel:
        """Add ``num_boost_round`` rounds to the fitted booster, trained on ``train``."""
        booster = self._booster()
        return self.fit(
            dataset, num_boost_round=num_boost_round, early_stopping_rounds=0, init_model=booster
        )

    def _booster(self) -> lgb.Booster:
        if self.booster_ is None:
            raise DataError("LGBModel is not fitted yet; call fit(dataset) first")
        return self.booster_

    def predict(self, dataset: Any, segment: str = "test") -> pd.Series:
        """Scores of ``segment`` at the best iteration, indexed by (datetime, instrument)."""
        booster = self._booster()
        x = dataset.prepare(segment, col_set="feature", data_key=DataHandlerLP.DK_I)
        values = booster.predict(x.to_numpy(), num_iteration=booster.best_iteration or None)
        return pd.Series(np.asarray(values, dtype=float), index=x.index, name="score")

    def get_feature_importance(self, importance_type: str = "split") -> pd.Series:
        """Feature importance by name, largest first (``"split"`` or ``"gain"``)."""
        booster = self._booster()
        values = booster.feature_importance(importance_type=importance_type)
        names = self.feature_names_ or booster.feature_name()
        return pd.Series(values, index=names, name=importance_type).sort_values(ascending=False)
