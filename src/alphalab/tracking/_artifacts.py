"""Artifact names and atomic object files.

An artifact name is a relative POSIX path inside its run. Names that would leave the run
(``../x``, ``/etc/x``, ``a/../../x``) are rejected before anything is written. Objects are
written to a temporary file in the destination folder, flushed to disk, then renamed over the
final name, so a crash leaves either the old artifact or the new one, never half of one.
"""

from __future__ import annotations

import os
import pickle
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from alphalab.exceptions import ArtifactPathError

#: Prefix of in-progress files; hidden from artifact listings.
TMP_PREFIX = ".alphalab-tmp-"


def check_artifact_path(name: str, *, allow_empty: bool = False) -> str:
    """Return ``name`` normalised to a relative POSIX path inside the run.

    Raises:
        ArtifactPathError: if ``name`` is absolute, contains ``..``, a backslash or a NUL, or
            is empty (unless ``allow_empty``).
    """
    if not isinstance(name, str):
        raise ArtifactPathError(f"An artifact name must be a string; got {name!r}")
    if name in ("", ".") and allow_empty:
        return ""
    problem = ""
    if not name or name in (".", "/"):
        problem = "it is empty"
    elif "\\" in name or "\x00" in name:
        problem = "it contains a backslash or NUL character"
    elif name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        problem = "it is absolute"
    else:
        parts = [p for p in PurePosixPath(name).parts if p != "."]
        if ".." in parts:
            problem = "it contains '..'"
        elif not parts:
            problem = "it is empty"
        elif parts[-1].startswith(TMP_PREFIX):
            problem = f"names starting with {TMP_PREFIX!r} are reserved"
        else:
            return "/".join(parts)
    raise ArtifactPathError(
        f"Invalid artifact name {name!r}: {problem}; use a relative path inside the run such "
        "as 'pred.pkl' or 'sig_analysis/ic.pkl'"
    )


def join_artifact_path(artifact_path: str | None, name: str) -> str:
    """Join a folder and a name, both checked, into one artifact path."""
    name = check_artifact_path(name)
    folder = check_artifact_path(artifact_path or "", allow_empty=True)
    return f"{folder}/{name}" if folder else name


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, rename).

    ``durable`` also fsyncs the data before the rename, so it survives a power loss too
    (the rename alone protects against the death of the process).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def dump_object(obj: Any) -> bytes:
    """Serialise ``obj`` for an artifact (pickle, highest protocol)."""
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def load_object_file(path: Path, unpickler: type[pickle.Unpickler] = pickle.Unpickler) -> Any:
    """Load an object written by :func:`dump_object`."""
    with open(path, "rb") as f:
        return unpickler(f).load()
