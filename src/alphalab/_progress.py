"""Progress display for long phases: a Rich spinner/bar on a terminal, log lines elsewhere."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from alphalab.logging import get_logger

logger = get_logger(__name__)


def progress_enabled() -> bool:
    """Live progress only on an interactive terminal, unless ``ALPHALAB_PROGRESS=0``."""
    return os.environ.get("ALPHALAB_PROGRESS", "1") != "0" and sys.stderr.isatty()


def make_progress() -> Progress:
    """A Rich progress display on stderr with alphalab's columns."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
        disable=not progress_enabled(),
    )


@contextmanager
def phase(description: str) -> Iterator[None]:
    """Show ``description`` with a spinner while the block runs, then log its duration."""
    started = time.perf_counter()
    with make_progress() as progress:
        progress.add_task(description, total=None)
        yield
    logger.info("%s: %.2fs", description, time.perf_counter() - started)
