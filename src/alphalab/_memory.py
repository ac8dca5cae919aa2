"""Give memory that native libraries freed back to the operating system.

glibc keeps freed heap memory for reuse by the same allocator, but Polars allocates with its
own (jemalloc), so after LightGBM frees its binning buffers the process would keep hundreds of
megabytes it never reuses. Trimming after such phases lowers the peak of the phases that follow.
Polars' jemalloc in turn keeps freed pages for 0.5-1.5 s (its settings) and purges them only
when it next allocates, so the float64 temporaries of one feature batch are still resident
while the next batch allocates its own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from collections.abc import Callable

#: Polars' jemalloc returns freed pages after 0.1 s, from its own background thread (measured
#: on Alpha158: the same speed as the 10 s default, ~200 MB lower peak).
POLARS_ALLOCATOR_CONF = "background_thread:true,dirty_decay_ms:100,muzzy_decay_ms:0"


def configure_polars_allocator() -> None:
    """Set Polars' allocator options unless the user did; effective only before Polars loads.

    Polars appends this variable to its own defaults when it is imported, so these win.
    """
    if "polars" not in sys.modules:
        os.environ.setdefault("_RJEM_MALLOC_CONF", POLARS_ALLOCATOR_CONF)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim  # glibc only (not musl)
    except (OSError, AttributeError):
        return None
    return trim


def release_free_memory() -> None:
    """Return the C heap's free pages to the OS (glibc's ``malloc_trim``); no-op elsewhere."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
