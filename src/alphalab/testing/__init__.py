"""Shared contract tests and helpers for backends (import from tests only; needs pytest)."""

from alphalab.testing._tracking import TrackingBackendContract

__all__ = ["TrackingBackendContract"]
