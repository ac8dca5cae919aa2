"""Give memory that native libraries freed, or no longer need, back to the operating system.

glibc keeps freed heap memory for reuse by the same allocator, but Polars allocates with its
own (jemalloc), so after LightGBM frees its binning buffers the process would keep hundreds of
megabytes it never reuses. Trimming after such phases lowers the peak of the phases that follow.
Polars' jemalloc in turn keeps freed pages for 0.5-1.5 s (its settings) and purges them only
when it next allocates, so the float64 temporaries of one feature batch are still resident
while the next batch allocates its own.
Frames read from a memory-mapped file (the feature cache) count in the process' memory only
for the pages that were read; those pages can be dropped too, and are read again from the OS
file cache when they are used again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import mmap
import os
import sys
import weakref
from collections.abc import Callable

#: Polars' jemalloc returns freed pages after 0.1 s, from its own background thread (measured
#: on Alpha158 for 300 stocks: the speed of Polars' own settings, a ~200 MB lower peak).
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


_mappings: weakref.WeakSet[mmap.mmap] = weakref.WeakSet()


def map_file(path: str | os.PathLike[str]) -> mmap.mmap:
    """Map a file read-only; :func:`release_free_memory` drops the pages read from it."""
    with open(path, "rb") as file:
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    _mappings.add(mapped)
    return mapped


def release_free_memory() -> None:
    """Return the C heap's free pages (glibc's ``malloc_trim``) and mapped files' pages to the OS.

    A no-op where neither exists. Mapped data stays readable: it is paged in again on use.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    drop_mapped_pages()


def drop_mapped_pages() -> None:
    """Unload the pages read from files mapped by :func:`map_file` (they stay readable)."""
    if hasattr(mmap, "MADV_DONTNEED"):
        for mapped in list(_mappings):
            if not mapped.closed:
                mapped.madvise(mmap.MADV_DONTNEED)
