"""The console the commands print to, and the names metrics are shown under."""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console


class _Console:
    """A Rich console made per use, so ``COLUMNS`` is honoured even on a dumb terminal."""

    def __getattr__(self, name: str) -> Any:
        columns = os.environ.get("COLUMNS", "")
        return getattr(Console(width=int(columns) if columns.isdigit() else None), name)


#: Standard output of the commands (tables, summaries).
console = _Console()


_SHORT_NAMES = {
    "1day.excess_return_without_cost.annualized_return": "ann. return (no cost)",
    "1day.excess_return_without_cost.information_ratio": "IR (no cost)",
    "1day.excess_return_without_cost.max_drawdown": "max drawdown (no cost)",
    "1day.excess_return_with_cost.annualized_return": "ann. return (with cost)",
    "1day.excess_return_with_cost.information_ratio": "IR (with cost)",
    "1day.excess_return_with_cost.max_drawdown": "max drawdown (with cost)",
}


def short_name(metric: str) -> str:
    """A readable name for a summary metric (other metrics keep theirs)."""
    return _SHORT_NAMES.get(metric, metric)
