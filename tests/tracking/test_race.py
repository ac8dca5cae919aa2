"""Eight processes start runs in one new experiment of a brand-new store at the same moment."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from alphalab.tracking import MlflowExpManager, RecorderStatus

N_PROCESSES = 8

LAUNCHER = textwrap.dedent(
    """
    import os, sys, traceback
    from pathlib import Path
    from alphalab.tracking import R
    import mlflow.store.tracking.sqlalchemy_store  # imported once, shared by the forked workers

    n, out = int(sys.argv[1]), Path(sys.argv[2])
    go_read, go_write = os.pipe()
    pids = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:  # a worker: its own process, its own connections to the store
            os.close(go_write)
            os.read(go_read, 1)  # returns for every worker at once when the launcher says go
            code = 0
            try:
                with R.start(experiment_name="race", recorder_name=f"p{i}") as rec:
                    R.log_metrics(step=0, x=1.0)
                (out / f"{i}.ok").write_text(rec.id)
            except BaseException:
                (out / f"{i}.err").write_text(traceback.format_exc())
                code = 1
            os._exit(code)
        pids.append(pid)
    os.close(go_read)
    os.close(go_write)  # go: every worker's read returns now
    failed = sum(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0 for pid in pids)
    sys.exit(1 if failed else 0)
    """
)


def _race(tmp_path: Path, uri: str) -> list[str]:
    """Start N forked workers that open ``uri`` and start a run at the same moment."""
    script = tmp_path / "launcher.py"
    script.write_text(LAUNCHER)
    out = tmp_path / "results"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPHALAB_")}
    env["ALPHALAB_TRACKING_URI"] = uri
    env["ALPHALAB_ARTIFACT_LOCATION"] = str(tmp_path / "artifacts")
    done = subprocess.run(
        [sys.executable, str(script), str(N_PROCESSES), str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    errors = [p.read_text() for p in sorted(out.glob("*.err"))]
    assert done.returncode == 0 and not errors, "\n".join([done.stderr, *errors])
    return [p.read_text() for p in sorted(out.glob("*.ok"))]


def _check(uri: str, tmp_path: Path, run_ids: list[str]) -> None:
    manager = MlflowExpManager(
        uri, artifact_location=str(tmp_path / "artifacts"), journal_dir=tmp_path / "journal"
    )
    experiments = manager.list_experiments()
    assert [name for name in experiments if name.startswith("race")] == ["race"]
    runs = manager.get_exp(experiment_name="race", create=False).list_recorders(rtype="list")
    assert isinstance(runs, list)
    assert sorted(r.id for r in runs) == sorted(run_ids)
    assert len(set(run_ids)) == N_PROCESSES
    for rec in runs:
        assert rec.status is RecorderStatus.FINISHED
        assert rec.list_metrics() == {"x": 1.0}


@pytest.mark.slow
def test_race_on_a_brand_new_sqlite_store(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'new-store' / 'mlflow.db'}"
    run_ids = _race(tmp_path, uri)
    _check(uri, tmp_path, run_ids)


@pytest.mark.slow
@pytest.mark.postgres
def test_race_on_a_brand_new_postgres_database(fresh_pg_database: str, tmp_path: Path) -> None:
    run_ids = _race(tmp_path, fresh_pg_database)
    _check(fresh_pg_database, tmp_path, run_ids)
