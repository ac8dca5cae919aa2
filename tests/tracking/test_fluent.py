"""The ``R`` facade: run lifecycle, active-run rules, lookups, URIs."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import alphalab
from alphalab.exceptions import NotFoundError, TrackingError
from alphalab.tracking import R, RecorderStatus


def test_r_is_exposed_lazily_on_the_package(tracking_uri: str) -> None:
    assert alphalab.R is R
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        _ = alphalab.nothing  # type: ignore[attr-defined]


def test_start_finishes_and_logs_into_the_active_run(tracking_uri: str, tmp_path: Path) -> None:
    assert R.get_uri() == tracking_uri
    with R.start(experiment_name="exp", recorder_name="train") as rec:
        assert R.get_recorder() is rec
        R.log_params(lr=0.05)
        for step in range(100):
            R.log_metrics(step=step, loss=100 - step)
        R.set_tags(kind="test")
        R.save_objects(**{"pred.pkl": {"a": 1}})
        assert R.load_object("pred.pkl") == {"a": 1}
        R.delete_tags("kind")
        assert R.get_exp().name == "exp"
        local = tmp_path / "note.txt"
        local.write_text("n")
        R.log_artifact(local, "notes")
        assert Path(R.download_artifact("notes/note.txt", tmp_path / "dl")).read_text() == "n"
        assert rec.get_artifact_uri().endswith(f"{rec.id}/artifacts")
    assert rec.status is RecorderStatus.FINISHED
    assert rec.metric_history("loss")["value"].tolist() == [100 - s for s in range(100)]
    assert rec.list_params()["lr"] == "0.05"
    assert "kind" not in rec.list_tags()
    assert R.active_recorder is None
    # No active run: logging is an error, never a silent write into an old run.
    with pytest.raises(TrackingError, match="No run is active"):
        R.log_metrics(loss=1.0)
    with pytest.raises(TrackingError, match="No run is active"):
        R.get_recorder()


def test_exception_marks_the_run_failed_and_is_reraised(tracking_uri: str) -> None:
    with pytest.raises(ZeroDivisionError, match="division by zero"), R.start() as rec:
        R.log_metrics(step=0, x=1.0)
        _ = 1 / 0
    assert rec.status is RecorderStatus.FAILED
    assert rec.list_tags()["alphalab.error"].startswith("ZeroDivisionError")
    traceback_text = Path(rec.download_artifact("error/traceback.txt")).read_text()
    assert "1 / 0" in traceback_text
    assert rec.list_metrics() == {"x": 1.0}
    assert R.get_exp().name == "Experiment"  # the default experiment


def test_keyboard_interrupt_marks_the_run_killed(tracking_uri: str) -> None:
    with pytest.raises(KeyboardInterrupt, match="stop"), R.start() as rec:
        raise KeyboardInterrupt("stop")
    assert rec.status is RecorderStatus.KILLED


def test_start_exp_end_exp_and_resume(tracking_uri: str) -> None:
    rec = R.start_exp(experiment_name="e", recorder_name="r")
    R.log_metrics(step=0, m=1.0)
    with pytest.raises(TrackingError, match="already active"):
        R.start_exp(experiment_name="e")
    R.end_exp(RecorderStatus.FINISHED)
    with pytest.raises(TrackingError, match="no run is active"):
        R.end_exp()
    with R.start(recorder_id=rec.id, resume=True) as again:
        assert again.id == rec.id
        R.log_metrics(step=1, m=2.0)
    assert again.metric_history("m")["value"].tolist() == [1.0, 2.0]
    with (
        pytest.raises(NotFoundError, match="No run with id"),
        R.start(recorder_id="f" * 32, resume=True),
    ):
        pass


def test_nested_runs_restore_the_parent(tracking_uri: str) -> None:
    with pytest.raises(TrackingError, match="needs an active parent run"), R.start(nested=True):
        pass
    with R.start(experiment_name="roll", recorder_name="parent") as parent:
        for i in range(3):
            with R.start(nested=True, recorder_name=f"child{i}") as child:
                assert R.get_recorder() is child
                R.log_metrics(IC=i / 10)
            assert R.get_recorder() is parent
    assert parent.child_count == 3
    assert sorted(c.name for c in parent.list_children()) == ["child0", "child1", "child2"]
    assert all(c.parent_id == parent.id for c in parent.list_children())


def test_lookups_listing_search_and_delete(tracking_uri: str) -> None:
    ids = []
    for i in range(3):
        with R.start(experiment_name="search", recorder_name="same") as rec:
            R.log_metrics(IC=i / 10)
            R.log_params(seed=i)
            ids.append(rec.id)
    assert R.get_recorder(recorder_name="same", experiment_name="search").id == ids[-1]
    assert R.get_recorder(recorder_id=ids[0]).id == ids[0]
    assert "search" in R.list_experiments()
    assert list(R.list_recorders(experiment_name="search")) == ids[::-1]
    frame = R.search_records(filter_string="metrics.IC > 0.05 and params.seed = '2'")
    assert frame["run_id"].tolist() == [ids[2]]
    R.delete_recorder(recorder_id=ids[0])
    assert len(R.list_recorders(experiment_name="search")) == 2
    R.delete_exp(experiment_name="search")
    assert "search" not in R.list_experiments()
    with pytest.raises(NotFoundError, match="No experiment named 'search'"):
        R.get_exp(experiment_name="search", create=False)


def test_uri_context_and_set_uri(tracking_uri: str, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other' / 'mlflow.db'}"
    with R.uri_context(other):
        assert R.get_uri() == other
    assert R.get_uri() == tracking_uri
    R.set_uri(other)
    try:
        assert R.get_uri() == other
    finally:
        R.set_uri(None)
    assert R.get_uri() == tracking_uri


def test_each_thread_has_its_own_active_run(tracking_uri: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)
    ids: dict[int, str] = {}

    def work(n: int) -> None:
        try:
            with R.start(experiment_name="threads", recorder_name=f"t{n}") as rec:
                ids[n] = rec.id
                barrier.wait(timeout=30)  # all three runs are active at once
                for step in range(200):
                    R.log_metrics(step=step, value=n * 1000 + step)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for n, run_id in ids.items():
        rec = R.get_recorder(recorder_id=run_id)
        assert rec.metric_history("value")["value"].tolist() == [n * 1000 + s for s in range(200)]


def test_unknown_tracking_scheme_is_rejected(tracking_uri: str) -> None:
    from alphalab.exceptions import ConfigError

    with pytest.raises(ConfigError, match="unsupported scheme 'ftp'"):
        R.set_uri("ftp://example/x")


def test_metric_callback_is_bound_to_the_run_across_threads(tracking_uri: str) -> None:
    with pytest.raises(TrackingError, match="No run is active"):
        R.metric_callback()
    with R.start(experiment_name="cb") as rec:
        callback = R.metric_callback()
        worker = threading.Thread(target=lambda: [callback(step=s, loss=-s) for s in range(50)])
        worker.start()
        worker.join()
        with R.start(nested=True, recorder_name="child") as child:
            assert R.get_recorder(recorder_name="child").id == child.id  # the active experiment
    assert rec.metric_history("loss")["value"].tolist() == [-s for s in range(50)]


def test_qlib_constants(tracking_uri: str) -> None:
    from alphalab.tracking import Experiment, Recorder

    R.start_exp(experiment_name="consts")
    R.end_exp(recorder_status=Recorder.STATUS_FA)
    exp = R.get_exp(experiment_name="consts")
    runs = exp.list_recorders(rtype=Experiment.RT_L)
    assert isinstance(runs, list) and runs[0].status is RecorderStatus.FAILED
    with pytest.raises(TrackingError, match="rtype must be 'dict' or 'list'"):
        exp.list_recorders(rtype="set")  # type: ignore[arg-type]


def test_sqlite_store_uses_wal_and_a_lock_file(tracking_uri: str) -> None:
    import sqlite3

    from alphalab.config import sqlite_path

    with R.start():
        pass
    path = sqlite_path(tracking_uri)
    assert path is not None
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()
    assert path.with_name(path.name + ".lock").exists()  # beside the database, not in the cwd
