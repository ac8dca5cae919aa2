"""The model interface (Qlib's ``Model``/``ModelFT``) and the training-curve hook.

Models live below the tracking layer, so they do not log to a run themselves: they report
each boosting round or epoch to :func:`report_training`, and whoever runs the training (the
``R`` facade when a run is active, a tuner's pruning callback) installs a reporter with
:func:`training_reporter`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd

from alphalab.exceptions import DataError

#: ``reporter(step, {"train.l2": 0.1, "valid.l2": 0.2})``
TrainingReporter = Callable[[int, Mapping[str, float]], None]

_reporters: ContextVar[tuple[TrainingReporter, ...]] = ContextVar("reporters", default=())
_default_reporters: list[TrainingReporter] = []


@contextmanager
def training_reporter(reporter: TrainingReporter) -> Iterator[None]:
    """Send training curves to ``reporter`` while the block runs (nests with others)."""
    token = _reporters.set((*_reporters.get(), reporter))
    try:
        yield
    finally:
        _reporters.reset(token)


def add_default_reporter(reporter: TrainingReporter) -> None:
    """Install a process-wide reporter (used by the tracking layer to reach the active run)."""
    if reporter not in _default_reporters:
        _default_reporters.append(reporter)


def report_training(step: int, metrics: Mapping[str, float]) -> None:
    """Report one training step's metrics to every installed reporter."""
    if not metrics:
        return
    values = {k: float(v) for k, v in metrics.items()}
    for reporter in (*_default_reporters, *_reporters.get()):
        reporter(step, values)


class BaseModel:
    """Anything that predicts from a dataset."""

    def predict(self, dataset: Any, segment: str = "test") -> pd.Series:
        """Scores indexed by (datetime, instrument)."""
        raise NotImplementedError

    def __call__(self, dataset: Any, segment: str = "test") -> pd.Series:
        return self.predict(dataset, segment)


class Model(BaseModel):
    """A learnable model: ``fit(dataset)`` then ``predict(dataset, segment)``.

    Construction only stores parameters; learned state lives in attributes ending in ``_``.
    Models pickle, so ``R.save_objects(**{"params.pkl": model})`` round-trips them.
    """

    def fit(
        self, dataset: Any, evals_result: dict[str, Any] | None = None, reweighter: Any = None
    ) -> Model:
        """Train on the dataset's ``train`` segment (validating on ``valid`` when present)."""
        raise NotImplementedError


class ModelFT(Model):
    """A model that can continue training from its fitted state."""

    def finetune(self, dataset: Any, **kwargs: Any) -> ModelFT:
        """Continue training on ``dataset``'s ``train`` segment."""
        raise NotImplementedError


def check_labels(y: np.ndarray, segment: str) -> None:
    """Reject NaN or infinite labels with a message that says where to fix them."""
    bad = ~np.isfinite(y)
    if bad.any():
        raise DataError(
            f"The {segment!r} segment has {int(bad.sum())} NaN/inf label(s) out of {y.size}; "
            "add DropnaLabel to learn_processors or clean the label expression"
        )


def segment_names(dataset: Any) -> list[str]:
    """Names of the dataset's segments (empty when it has none)."""
    return list(getattr(dataset, "segments", {}) or {})
