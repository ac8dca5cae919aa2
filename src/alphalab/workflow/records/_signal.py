"""SignalRecord (predictions and labels) and SigAnaRecord (IC analysis), as Qlib's."""

from __future__ import annotations

from typing import Any

import pandas as pd

from alphalab.data import DataHandlerLP, DatasetH
from alphalab.evaluate import signal_analysis
from alphalab.exceptions import ConfigError, DataError
from alphalab.logging import get_logger
from alphalab.model import BaseModel
from alphalab.tracking import Recorder
from alphalab.workflow.records._base import RecordTemp

logger = get_logger(__name__)


def raw_label(dataset: DatasetH, segment: str = "test") -> pd.DataFrame:
    """The unprocessed label of ``segment`` (the processed one when raw data was dropped)."""
    try:
        return DatasetH.prepare(dataset, segment, col_set="label", data_key=DataHandlerLP.DK_R)
    except ConfigError:
        return DatasetH.prepare(dataset, segment, col_set="label", data_key=DataHandlerLP.DK_I)


class SignalRecord(RecordTemp):
    """Predict the ``test`` segment: ``pred.pkl`` (column ``score``) and ``label.pkl``."""

    def __init__(
        self,
        model: BaseModel | None = None,
        dataset: DatasetH | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        super().__init__(recorder)
        self.model = model
        self.dataset = dataset

    def list(self) -> list[str]:
        return ["pred.pkl", "label.pkl"]

    def generate(self, **kwargs: Any) -> None:
        """Predict with the model and save predictions and raw labels of the test segment."""
        if self.model is None or self.dataset is None:
            raise ConfigError("SignalRecord needs model and dataset (use <MODEL> and <DATASET>)")
        pred = self.model.predict(self.dataset)
        if isinstance(pred, pd.Series):
            pred = pred.to_frame("score")
        if pred.empty:
            raise DataError("The model predicted nothing for the 'test' segment")
        self.save(**{"pred.pkl": pred})
        logger.info(
            "Saved %d predictions over %d days", len(pred), pred.index.get_level_values(0).nunique()
        )
        label = raw_label(self.dataset)
        self.save(**{"label.pkl": label})


class SigAnaRecord(RecordTemp):
    """IC and Rank IC by day (``sig_analysis/ic.pkl``, ``ric.pkl``) and their summary metrics."""

    artifact_path = "sig_analysis"
    depend_cls = SignalRecord

    def __init__(
        self,
        recorder: Recorder | None = None,
        ana_long_short: bool = False,
        ann_scaler: int = 252,
        label_col: int = 0,
        skip_existing: bool = False,
    ) -> None:
        super().__init__(recorder)
        self.ana_long_short = ana_long_short
        self.ann_scaler = ann_scaler
        self.label_col = label_col
        self.skip_existing = skip_existing

    def list(self) -> list[str]:
        paths = ["ic.pkl", "ric.pkl"]
        if self.ana_long_short:
            paths += ["long_short_r.pkl", "long_avg_r.pkl"]
        return [self.get_path(p) for p in paths]

    def generate(self, **kwargs: Any) -> None:
        """Compute the analysis from ``pred.pkl`` and ``label.pkl`` and log the metrics."""
        if self.skip_existing and all(self._exists(p) for p in self.list()):
            logger.info("SigAnaRecord: artifacts exist; skipped")
            return
        self.check()
        pred = self.load("pred.pkl")
        label = self.load("label.pkl")
        if label.shape[1] <= self.label_col:
            raise ConfigError(
                f"SigAnaRecord label_col={self.label_col} but label.pkl has {label.shape[1]} "
                "column(s)"
            )
        result = signal_analysis(
            pred.iloc[:, 0],
            label.iloc[:, self.label_col],
            ana_long_short=self.ana_long_short,
            ann_scaler=self.ann_scaler,
        )
        objects = {"ic.pkl": result.ic, "ric.pkl": result.ric}
        if result.long_short_r is not None and result.long_avg_r is not None:
            objects["long_short_r.pkl"] = result.long_short_r
            objects["long_avg_r.pkl"] = result.long_avg_r
        self.save(**objects)
        self.recorder.log_metrics(step=None, **dict(result.metrics))
        logger.info("Signal analysis: %s", {k: round(v, 4) for k, v in result.metrics.items()})
