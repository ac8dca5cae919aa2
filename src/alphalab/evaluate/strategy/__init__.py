"""Portfolio strategies driven by a prediction signal."""

from __future__ import annotations

from alphalab.evaluate.strategy._topk_dropout import TopkDropoutStrategy

__all__ = ["TopkDropoutStrategy"]
