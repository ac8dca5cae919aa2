"""Process-memory settings made when alphalab is imported."""

from __future__ import annotations

import os
import subprocess
import sys

from alphalab._memory import POLARS_ALLOCATOR_CONF

PRINT_CONF = "import alphalab, os; print(os.environ.get('_RJEM_MALLOC_CONF'))"


def _conf_after_import(code: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    result = subprocess.run(
        [sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_alphalab_first_sets_polars_allocator_options() -> None:
    assert _conf_after_import(PRINT_CONF) == POLARS_ALLOCATOR_CONF


def test_a_users_allocator_options_are_kept() -> None:
    assert _conf_after_import(PRINT_CONF, _RJEM_MALLOC_CONF="narenas:2") == "narenas:2"


def test_polars_loaded_before_alphalab_is_left_alone() -> None:
    # the options would no longer apply, so Polars' own stand alone
    assert POLARS_ALLOCATOR_CONF not in _conf_after_import("import polars; " + PRINT_CONF)
