"""Models: the fit/predict interface, LightGBM, DoubleEnsemble and linear baselines.

LightGBM models and PyTorch nets (the ``torch`` extra) are imported on first use: importing
LightGBM costs ~2 s (it loads scikit-learn), which a workflow spends while features compute.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from alphalab._imports import import_optional
from alphalab._training import (
    TrainingReporter,
    add_default_reporter,
    report_training,
    training_reporter,
)
from alphalab.model._base import BaseModel, Model, ModelFT
from alphalab.model._linear import LinearModel

if TYPE_CHECKING:
    from alphalab.model._double_ensemble import DEnsembleModel
    from alphalab.model._lightgbm import LGBModel

__all__ = [
    "ALSTM",
    "GRU",
    "LSTM",
    "BaseModel",
    "DEnsembleModel",
    "LGBModel",
    "LinearModel",
    "MLPModel",
    "Model",
    "ModelFT",
    "TrainingReporter",
    "add_default_reporter",
    "report_training",
    "training_reporter",
]

_TORCH_MODELS = {"ALSTM", "GRU", "LSTM", "MLPModel"}
_LIGHTGBM_MODELS = {"DEnsembleModel": "_double_ensemble", "LGBModel": "_lightgbm"}


def __getattr__(name: str) -> Any:
    if name in _LIGHTGBM_MODELS:
        return getattr(import_module(f"alphalab.model.{_LIGHTGBM_MODELS[name]}"), name)
    if name in _TORCH_MODELS:
        import_optional("torch", "torch", f"the {name} model")
        from alphalab.model import _torch

        return getattr(_torch, name)
    raise AttributeError(f"module 'alphalab.model' has no attribute {name!r}")
