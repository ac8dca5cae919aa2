"""Linear baselines (Qlib's ``LinearModel``): OLS, non-negative OLS, ridge and lasso."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from alphalab.data.handler import DataHandlerLP
from alphalab.exceptions import ConfigError, DataError
from alphalab.model._base import Model, check_labels, segment_names

_ESTIMATORS = ("ols", "nnls", "ridge", "lasso")


class LinearModel(Model):
    """A linear model of the label on the features; rows with missing values are skipped.

    Args:
        estimator: ``"ols"``, ``"nnls"`` (non-negative coefficients), ``"ridge"`` or
            ``"lasso"``.
        alpha: Regularisation strength for ridge/lasso.
        fit_intercept: Fit an intercept.
        include_valid: Also train on the ``valid`` segment.
    """

    def __init__(
        self,
        estimator: str = "ols",
        alpha: float = 0.0,
        fit_intercept: bool = False,
        include_valid: bool = False,
    ) -> None:
        self.estimator = estimator
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.include_valid = include_valid
        self.coef_: np.ndarray | None = None
        self.intercept_: float = 0.0

    def fit(
        self, dataset: Any, evals_result: dict[str, Any] | None = None, reweighter: Any = None
    ) -> LinearModel:
        """Fit on ``train`` (and ``valid`` when ``include_valid``)."""
        if self.estimator not in _ESTIMATORS:
            raise ConfigError(
                f"LinearModel estimator must be one of {_ESTIMATORS}; got {self.estimator!r}"
            )
        if self.estimator in ("ridge", "lasso") and self.alpha <= 0:
            raise ConfigError(f"LinearModel {self.estimator} needs alpha > 0; got {self.alpha}")
        if "train" not in segment_names(dataset):
            raise DataError("LinearModel.fit needs a 'train' segment in the dataset")
        segments = ["train", "valid"] if self.include_valid else ["train"]
        frames = dataset.prepare(
            segments, col_set=["feature", "label"], data_key=DataHandlerLP.DK_L
        )
        frame = pd.concat(frames).dropna()
        if frame.empty:
            raise DataError("LinearModel: no training row without missing values")
        x = frame["feature"].to_numpy()
        y = frame["label"].to_numpy()
        if y.shape[1] != 1:
            raise DataError(f"LinearModel trains on one label column; got {y.shape[1]}")
        y = y.ravel()
        check_labels(y, "train")
        weight = None if reweighter is None else np.asarray(reweighter.reweight(frame))
        self._fit_arrays(x, y, weight)
        return self

    def _fit_arrays(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> None:
        from sklearn.linear_model import Lasso, LinearRegression, Ridge

        if self.estimator == "ols":
            est: Any = LinearRegression(fit_intercept=self.fit_intercept)
        elif self.estimator == "nnls":
            est = LinearRegression(fit_intercept=self.fit_intercept, positive=True)
        elif self.estimator == "ridge":
            est = Ridge(alpha=self.alpha, fit_intercept=self.fit_intercept)
        else:
            est = Lasso(alpha=self.alpha, fit_intercept=self.fit_intercept)
        est.fit(x, y, sample_weight=weight)
        self.coef_ = np.asarray(est.coef_, dtype=float)
        self.intercept_ = float(est.intercept_) if self.fit_intercept else 0.0

    def predict(self, dataset: Any, segment: str = "test") -> pd.Series:
        """``features @ coef + intercept``; NaN where a feature is missing."""
        if self.coef_ is None:
            raise DataError("LinearModel is not fitted yet; call fit(dataset) first")
        x = dataset.prepare(segment, col_set="feature", data_key=DataHandlerLP.DK_I)
        values = x.to_numpy() @ self.coef_ + self.intercept_
        return pd.Series(values, index=x.index, name="score")
