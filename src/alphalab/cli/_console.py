"""The console the commands print to."""

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
