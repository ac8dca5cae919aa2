"""Models: the fit/predict interface, LightGBM, DoubleEnsemble and linear baselines."""

from alphalab.model._base import (
    BaseModel,
    Model,
    ModelFT,
    TrainingReporter,
    add_default_reporter,
    report_training,
    training_reporter,
)
from alphalab.model._double_ensemble import DEnsembleModel
from alphalab.model._lightgbm import LGBModel
from alphalab.model._linear import LinearModel

__all__ = [
    "BaseModel",
    "DEnsembleModel",
    "LGBModel",
    "LinearModel",
    "Model",
    "ModelFT",
    "TrainingReporter",
    "add_default_reporter",
    "report_training",
    "training_reporter",
]
