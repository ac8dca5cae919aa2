"""The model interface (Qlib's ``Model``/``ModelFT``).

Models report each boosting round or epoch through :func:`alphalab._training.report_training`
(re-exported by ``alphalab.model``), never to a run directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from alphalab.exceptions import DataError


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
