"""Artifact names and atomic writes; provenance (git, liveness, data fingerprints)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphalab.exceptions import ArtifactPathError
from alphalab.tracking import R, check_artifact_path, data_fingerprint, process_liveness
from alphalab.tracking._artifacts import TMP_PREFIX, atomic_write_bytes
from alphalab.tracking._provenance import git_state


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pred.pkl", "pred.pkl"),
        ("a/./b.pkl", "a/b.pkl"),
        ("sig_analysis/ic.pkl", "sig_analysis/ic.pkl"),
    ],
)
def test_valid_artifact_names_are_normalised(name: str, expected: str) -> None:
    assert check_artifact_path(name) == expected


@given(st.lists(st.sampled_from(["a", "b", "..", ".", "c.pkl"]), min_size=1, max_size=6))
def test_no_accepted_name_leaves_the_run(parts: list[str]) -> None:
    name = "/".join(parts)
    try:
        normalised = check_artifact_path(name)
    except ArtifactPathError:
        return
    resolved = (Path("/run") / normalised).resolve()
    assert resolved.is_relative_to(Path("/run")) and resolved != Path("/run")


def test_reserved_and_absolute_names_are_rejected() -> None:
    with pytest.raises(ArtifactPathError, match="it is absolute"):
        check_artifact_path("/etc/passwd")
    with pytest.raises(ArtifactPathError, match="reserved"):
        check_artifact_path(f"x/{TMP_PREFIX}y")


def test_a_failed_write_keeps_the_old_artifact_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "run" / "pred.pkl"
    atomic_write_bytes(target, b"old")

    def crash(src: str, dst: str) -> None:
        raise OSError("disk died")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk died"):
        atomic_write_bytes(target, b"new" * 1000)
    assert target.read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["pred.pkl"]


def test_a_killed_writer_never_leaves_a_readable_half_artifact(
    tracking_uri: str, tmp_path: Path
) -> None:
    """A process killed while saving a large object: load_object sees the old one or none."""
    with R.start(experiment_name="atomic") as rec:
        R.save_objects(**{"big.pkl": "old"})
    code = (
        "import sys, os, signal, threading\n"
        "from alphalab.tracking import R\n"
        f"rec = R.start_exp(recorder_id={rec.id!r}, resume=True)\n"
        "threading.Timer(0.05, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()\n"
        "while True:\n"
        "    R.save_objects(**{'big.pkl': b'x' * 30_000_000})\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPHALAB_")}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, timeout=120
    )
    assert done.returncode == -9, done.stderr.decode()
    value = R.get_recorder(recorder_id=rec.id).load_object("big.pkl")
    assert value == "old" or value == b"x" * 30_000_000


def test_git_state_and_code_artifacts(tracking_uri: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    (repo / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "a.py"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True)
    (repo / "a.py").write_text("x = 2\n")
    state = git_state(str(repo))
    assert state is not None and state.branch == "main" and state.dirty
    assert "+x = 2" in state.diff
    assert git_state(str(tmp_path)) is None  # not a work tree
    os.chdir(repo)
    git_state.cache_clear()
    try:
        with R.start(uri=tracking_uri) as rec:
            pass
    finally:
        git_state.cache_clear()
    tags = rec.list_tags()
    assert tags["mlflow.source.git.commit"] == state.commit
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["alphalab.git.dirty"] == "True"
    assert "+x = 2" in Path(rec.download_artifact("code_diff.txt")).read_text()
    assert "a.py" in Path(rec.download_artifact("code_status.txt")).read_text()


def test_process_liveness() -> None:
    import socket

    host = socket.gethostname()
    assert process_liveness({"hostname": host, "alphalab.pid": str(os.getpid())}) == "alive"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert process_liveness({"hostname": host, "alphalab.pid": str(dead.pid)}) == "dead"
    assert process_liveness({"hostname": "elsewhere", "alphalab.pid": "1"}) == "unknown"
    reused = {"hostname": host, "alphalab.pid": str(os.getpid()), "alphalab.pid_start": "1"}
    assert process_liveness(reused) == "dead"  # same pid, different process start time


def test_data_fingerprint_tracks_content(tracking_uri: str, tmp_path: Path) -> None:
    import pandas as pd
    import polars as pl

    frame = pd.DataFrame({"a": [1.0, 2.0]}, index=["x", "y"])
    same = pd.DataFrame({"a": [1.0, 2.0]}, index=["x", "y"])
    changed = pd.DataFrame({"a": [1.0, 2.5]}, index=["x", "y"])
    assert data_fingerprint(frame) == data_fingerprint(same) != data_fingerprint(changed)
    assert data_fingerprint(pl.DataFrame({"a": [1]})) != data_fingerprint(pl.DataFrame({"a": [2]}))

    class Dataset:
        def fingerprint(self) -> str:
            return "abc123"

    config_file = tmp_path / "workflow.yaml"
    config_file.write_text("task: {}\n")
    with R.start() as rec:
        rec.log_provenance(
            config={"task": {"model": "m"}}, config_file=config_file, dataset=Dataset()
        )
    assert rec.list_tags()["alphalab.data_fingerprint"] == "abc123"
    assert rec.list_params()["task.model"] == "m"
    assert "workflow.yaml" in rec.list_artifacts()
