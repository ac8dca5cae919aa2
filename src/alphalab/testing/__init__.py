"""Shared contract tests and helpers for backends (import from tests only; needs pytest)."""

from alphalab.testing._tasks import TaskStoreContract
from alphalab.testing._tracking import TrackingBackendContract

__all__ = ["TaskStoreContract", "TrackingBackendContract"]
