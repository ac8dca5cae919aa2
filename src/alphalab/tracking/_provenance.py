"""Run provenance: where, how and from what code and data a run was produced.

Facts that cannot change during a process (host, Python, packages, git state at first use)
are computed once per process and reused by every run, so starting a run stays cheap.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alphalab.logging import get_logger
from alphalab.version import __version__

logger = get_logger(__name__)

# Tag names (MLflow's own where one exists, so the MLflow UI shows them).
TAG_HOST = "hostname"
TAG_PID = "alphalab.pid"
TAG_PID_START = "alphalab.pid_start"
TAG_PYTHON = "alphalab.python"
TAG_VERSION = "alphalab.version"
TAG_CMDLINE = "alphalab.cmdline"
TAG_JOURNAL = "alphalab.journal"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_GIT_BRANCH = "mlflow.source.git.branch"
TAG_GIT_DIRTY = "alphalab.git.dirty"
TAG_DATA_FINGERPRINT = "alphalab.data_fingerprint"
TAG_ERROR = "alphalab.error"
TAG_PARENT = "mlflow.parentRunId"
TAG_RUN_NAME = "mlflow.runName"
PARAM_ARGV = "cmd-sys.argv"


@dataclass(frozen=True)
class GitState:
    """The git state of the working directory."""

    commit: str
    branch: str
    diff: str
    status: str
    cached: str

    @property
    def dirty(self) -> bool:
        """Whether there are uncommitted changes."""
        return bool(self.diff or self.cached)


def _git(args: list[str], cwd: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@functools.lru_cache(maxsize=8)
def git_state(cwd: str) -> GitState | None:
    """Git state of ``cwd``, or None outside a work tree (or without git)."""
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return None
    branch = (_git(["rev-parse", "--abbrev-ref", "HEAD"], cwd) or "").strip()
    return GitState(
        commit=commit.strip(),
        branch=branch,
        diff=_git(["diff"], cwd) or "",
        status=_git(["status"], cwd) or "",
        cached=_git(["diff", "--cached"], cwd) or "",
    )


@functools.lru_cache(maxsize=1)
def package_versions() -> str:
    """``name==version`` of every installed distribution, one per line, sorted."""
    from importlib import metadata

    lines = {f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()}
    return "\n".join(sorted(lines, key=str.lower)) + "\n"


def process_start_ticks(pid: int) -> str:
    """Start time of process ``pid`` in clock ticks since boot ("" where unavailable).

    Together with the pid it identifies a process even after the pid is reused.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may contain spaces; fields after its ')' are plain.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


@functools.lru_cache(maxsize=1)
def _process_tags() -> dict[str, str]:
    pid = os.getpid()
    return {
        TAG_HOST: socket.gethostname(),
        TAG_PID: str(pid),
        TAG_PID_START: process_start_ticks(pid),
        TAG_PYTHON: f"{platform.python_implementation()} {platform.python_version()}",
        TAG_VERSION: __version__,
    }


def run_start_tags() -> dict[str, str]:
    """Tags set on every run when it starts (host, pid, Python, command line, git)."""
    tags = dict(_process_tags())
    if tags[TAG_PID] != str(os.getpid()):  # forked since the cache was filled
        _process_tags.cache_clear()
        tags = dict(_process_tags())
    tags[TAG_CMDLINE] = " ".join(sys.argv)[:8000]
    git = git_state(os.getcwd())
    if git is not None:
        tags[TAG_GIT_COMMIT] = git.commit
        tags[TAG_GIT_BRANCH] = git.branch
        tags[TAG_GIT_DIRTY] = str(git.dirty)
    return tags


def run_start_artifacts() -> dict[str, str]:
    """Text artifacts written on every run: git diff/status and package versions."""
    files = {"environment/packages.txt": package_versions()}
    git = git_state(os.getcwd())
    if git is not None:
        files["code_diff.txt"] = git.diff
        files["code_status.txt"] = git.status
        files["code_cached.txt"] = git.cached
    return files


def process_liveness(tags: Mapping[str, str]) -> str:
    """Whether the process that ran a run is alive: ``alive``, ``dead`` or ``unknown``.

    Only a process on this host can be checked; a pid reused by another process counts as
    dead (its start time differs).
    """
    host, pid_text = tags.get(TAG_HOST), tags.get(TAG_PID)
    if not pid_text or host != socket.gethostname():
        return "unknown"
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except ProcessLookupError:
        return "dead"
    except (ValueError, PermissionError, OSError):
        return "unknown"
    recorded = tags.get(TAG_PID_START, "")
    if recorded and process_start_ticks(pid) not in ("", recorded):
        return "dead"
    return "alive"


def data_fingerprint(dataset: Any) -> str:
    """A short fingerprint of the data a run used.

    Uses the object's own ``fingerprint`` (attribute or method) when it has one (alphalab
    datasets and handlers do); else hashes a pandas/Polars frame's content; else its repr.
    """
    own = getattr(dataset, "fingerprint", None)
    if callable(own):
        own = own()
    if isinstance(own, str) and own:
        return own
    digest = hashlib.sha256()
    module = type(dataset).__module__.split(".")[0]
    if module == "pandas":
        import pandas as pd

        digest.update(pd.util.hash_pandas_object(dataset, index=True).to_numpy().tobytes())
        digest.update(repr(list(getattr(dataset, "columns", []))).encode())
    elif module == "polars":
        digest.update(dataset.hash_rows().to_numpy().tobytes())
        digest.update(repr(dataset.columns).encode())
    else:
        digest.update(repr(dataset).encode())
    return digest.hexdigest()[:32]
