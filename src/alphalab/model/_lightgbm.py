"""LightGBM regression/classification on a dataset's flat features (Qlib's ``LGBModel``)."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from alphalab._memory import release_free_memory
from alphalab._progress import make_progress
from alphalab._training import report_training
from alphalab.data.handler import DataHandlerLP
from alphalab.exceptions import ConfigError, DataError
from alphalab.model._base import (
    ModelFT,
    check_labels,
    segment_arrays,
    segment_chunks,
    segment_names,
)
from alphalab.model._lgb_stream import Chunks, label_column, stream_dataset

_OBJECTIVES = {"mse": "regression", "binary": "binary"}


def _train_arrays(dataset: Any, segment: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Features, label and feature names of a whole segment (its frame is not kept)."""
    data = segment_arrays(dataset, segment, DataHandlerLP.DK_L)
    y = label_column(data, segment)
    check_labels(y, segment)
    return data.x, y, data.feature_names


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

    def _datasets(
        self, dataset: Any, reweighter: Any, keep_raw: bool
    ) -> tuple[lgb.Dataset, lgb.Dataset | None]:
        """LightGBM's binned ``train`` and ``valid`` datasets.

        Segments are streamed into LightGBM a run of dates at a time (see ``_lgb_stream``).
        With a reweighter, or ``keep_raw`` (continuing a booster scores the raw rows), each
        segment is read whole as a float32 matrix instead.
        """
        if "train" not in segment_names(dataset):
            raise DataError("LGBModel.fit needs a 'train' segment in the dataset")
        params = self._lgb_params()
        has_valid = "valid" in segment_names(dataset)
        if reweighter is None and not keep_raw:

            def chunks(segment: str) -> Chunks:
                return lambda: segment_chunks(dataset, segment, DataHandlerLP.DK_L)

            train, self.feature_names_ = stream_dataset(chunks("train"), "train", params)
            release_free_memory()  # the bin-finding sample
            if not has_valid:
                return train, None
            return train, stream_dataset(chunks("valid"), "valid", params, train)[0]
        x, y, self.feature_names_ = _train_arrays(dataset, "train")
        weight = None
        if reweighter is not None:
            frame = dataset.prepare(
                "train", col_set=["feature", "label"], data_key=DataHandlerLP.DK_L
            )
            weight = np.asarray(reweighter.reweight(frame))
        train = lgb.Dataset(
            x, label=y, weight=weight, params=params, free_raw_data=not keep_raw
        ).construct()
        del x, y
        release_free_memory()  # LightGBM's sampling buffers for the bins
        if not has_valid:
            return train, None
        x, y, _ = _train_arrays(dataset, "valid")
        valid = lgb.Dataset(
            x, label=y, reference=train, params=params, free_raw_data=not keep_raw
        ).construct()
        return train, valid

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
        train, valid = self._datasets(dataset, reweighter, keep_raw=init_model is not None)
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
            booster = lgb.train(
                self._lgb_params(),
                train,
                num_boost_round=rounds,
                valid_sets=valid_sets,
                valid_names=valid_names,
                callbacks=callbacks,
                init_model=init_model,
            )
        # The binned data is only needed while training: free it with its native buffers.
        self.booster_ = booster.free_dataset()
        del train, valid, valid_sets
        release_free_memory()
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
        data = segment_arrays(dataset, segment, DataHandlerLP.DK_I, labels=False)
        values = booster.predict(data.x, num_iteration=booster.best_iteration or None)
        return pd.Series(np.asarray(values, dtype=float), index=data.index, name="score")

    def get_feature_importance(self, importance_type: str = "split") -> pd.Series:
        """Feature importance by name, largest first (``"split"`` or ``"gain"``)."""
        booster = self._booster()
        values = booster.feature_importance(importance_type=importance_type)
        names = self.feature_names_ or booster.feature_name()
        return pd.Series(values, index=names, name=importance_type).sort_values(ascending=False)
