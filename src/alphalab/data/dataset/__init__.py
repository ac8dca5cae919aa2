"""Datasets: named date segments over a handler (flat samples and sequences)."""

from alphalab.data.dataset._dataset import DatasetH, TSDataSampler, TSDatasetH

__all__ = ["DatasetH", "TSDataSampler", "TSDatasetH"]
