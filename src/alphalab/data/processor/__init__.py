"""Processors of feature frames (Qlib's names and defaults)."""

from alphalab.data.processor._processors import (
    CSRankNorm,
    CSZScoreNorm,
    DropnaFeature,
    DropnaLabel,
    Fillna,
    FilterCol,
    MinMaxNorm,
    ProcessInf,
    Processor,
    RobustZScoreNorm,
    TanhProcess,
    ZScoreNorm,
)

__all__ = [
    "CSRankNorm",
    "CSZScoreNorm",
    "DropnaFeature",
    "DropnaLabel",
    "Fillna",
    "FilterCol",
    "MinMaxNorm",
    "ProcessInf",
    "Processor",
    "RobustZScoreNorm",
    "TanhProcess",
    "ZScoreNorm",
]
