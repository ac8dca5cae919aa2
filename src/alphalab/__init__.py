"""alphalab: a research workbench for quantitative machine learning.

``alphalab.init(...)`` sets where data, runs and tasks live (Qlib's ``qlib.init``).
"""

from __future__ import annotations

from alphalab.config import get_settings, init
from alphalab.version import __version__

__all__ = ["__version__", "get_settings", "init"]
