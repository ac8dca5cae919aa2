"""Give memory that native libraries freed back to the operating system.

glibc keeps freed heap memory for reuse by the same allocator, but Polars allocates with its
own (jemalloc), so after LightGBM frees its binning buffers the process would keep hundreds of
megabytes it never reuses. Trimming after such phases lowers the peak of the phases that follow.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Callable


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
