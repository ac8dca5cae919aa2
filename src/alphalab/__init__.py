"""alphalab: a research workbench for quantitative machine learning.

``alphalab.init(...)`` sets where data, runs and tasks live (Qlib's ``qlib.init``).
``alphalab.R`` is the tracking facade (Qlib's ``R``), imported on first use.
"""

from __future__ import annotations

from typing import Any

from alphalab._memory import configure_polars_allocator
from alphalab.config import get_settings, init
from alphalab.version import __version__

configure_polars_allocator()  # nothing above imports Polars

__all__ = ["R", "__version__", "get_settings", "init"]


def __getattr__(name: str) -> Any:
    # Lazy: the tracking layer imports MLflow, which `import alphalab` must not pay for.
    if name == "R":
        from alphalab.tracking import R

        return R
    raise AttributeError(f"module 'alphalab' has no attribute {name!r}")
