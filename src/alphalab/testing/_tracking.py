"""Contract tests every tracking backend passes (SQLite, PostgreSQL, an MLflow server).

Subclass :class:`TrackingBackendContract` in a test module and provide two fixtures:
``manager`` (an :class:`~alphalab.tracking.ExpManager` on the backend) and ``exp_name`` (an
experiment name no other test uses, so tests can share one store).
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import pytest

from alphalab.exceptions import ArtifactPathError, NotFoundError, TrackingError
from alphalab.tracking import MlflowExpManager, RecorderStatus


class TrackingBackendContract:
    """The behaviour of ExpManager -> Experiment -> Recorder, whatever the store."""

    def test_experiment_get_or_create_is_idempotent(
        self, manager: MlflowExpManager, exp_name: str
    ) -> None:
        first = manager.create_exp(exp_name)
        again = manager.create_exp(exp_name)
        fetched = manager.get_exp(experiment_name=exp_name)
        assert first.id == again.id == fetched.id
        assert manager.get_exp(experiment_id=first.id).name == exp_name
        assert exp_name in manager.list_experiments()
        with pytest.raises(NotFoundError, match="No experiment named"):
            manager.get_exp(experiment_name=exp_name + "-missing", create=False)

    def test_delete_experiment_frees_its_name(
        self, manager: MlflowExpManager, exp_name: str
    ) -> None:
        exp = manager.create_exp(exp_name)
        manager.delete_exp(experiment_name=exp_name)
        assert exp_name not in manager.list_experiments()
        with pytest.raises(NotFoundError, match="is deleted"):
            manager.get_exp(experiment_id=exp.id)
        assert manager.create_exp(exp_name).id != exp.id

    def test_run_lifecycle_params_metrics_tags(
        self, manager: MlflowExpManager, exp_name: str
    ) -> None:
        exp = manager.get_exp(experiment_name=exp_name)
        rec = exp.start(recorder_name="train")
        assert rec.status is RecorderStatus.RUNNING
        assert rec.info["end_time"] is None
        rec.log_params(lr=0.1, layers=[1, 2])
        for step in range(250):
            rec.log_metrics(step=step, loss=1.0 / (step + 1), acc=step / 250)
        rec.log_metrics(step=250, loss=float("nan"))
        rec.set_tags(stage="dev", owner="me")
        rec.delete_tags("owner")
        rec.end_run()
        assert rec.status.value == "FINISHED"
        assert rec.start_time is not None and rec.end_time is not None
        assert rec.start_time <= rec.end_time
        assert rec.list_params()["lr"] == "0.1"
        assert rec.list_params()["layers"] == "[1, 2]"
        tags = rec.list_tags()
        assert tags["stage"] == "dev" and "owner" not in tags
        assert tags["hostname"]
        metrics = rec.list_metrics()
        assert math.isnan(metrics["loss"])
        assert metrics["acc"] == pytest.approx(249 / 250)
        history = rec.metric_history("loss")
        assert list(history.columns) == ["step", "timestamp", "value"]
        assert history["step"].tolist() == list(range(251))
        assert history["value"].iloc[9] == pytest.approx(0.1)

    def test_end_status_transitions_and_resume(
        self, manager: MlflowExpManager, exp_name: str
    ) -> None:
        exp = manager.get_exp(experiment_name=exp_name)
        rec = exp.start(recorder_name="r")
        rec.log_metrics(step=0, x=1.0)
        rec.end_run(RecorderStatus.FAILED)
        assert rec.status is RecorderStatus.FAILED
        with pytest.raises(TrackingError, match="cannot go from FAILED to FINISHED"):
            rec.end_run(RecorderStatus.FINISHED)
        with pytest.raises(TrackingError, match="pass resume=True"):
            exp.start(recorder_id=rec.id)
        again = exp.start(recorder_id=rec.id, resume=True)
        assert again.id == rec.id and again.status is RecorderStatus.RUNNING
        again.log_metrics(step=1, x=2.0)
        again.end_run()
        assert again.metric_history("x")["value"].tolist() == [1.0, 2.0]
        with pytest.raises(NotFoundError, match="No run with id"):
            exp.start(recorder_id="0" * 32, resume=True)

    def test_recorders_by_name_latest_wins(self, manager: MlflowExpManager, exp_name: str) -> None:
        exp = manager.get_exp(experiment_name=exp_name)
        old = exp.start(recorder_name="same")
        old.end_run()
        new = exp.start(recorder_name="same")
        new.end_run()
        assert exp.get_recorder(recorder_name="same", create=False).id == new.id
        assert exp.get_recorder(recorder_id=old.id).id == old.id
        scheduled = exp.create_recorder("later")
        assert scheduled.status is RecorderStatus.SCHEDULED
        started = exp.get_recorder(recorder_name="fresh", start=True)
        assert started.status is RecorderStatus.RUNNING
        started.end_run()
        listed = exp.list_recorders()
        assert isinstance(listed, dict)
        assert set(listed) == {old.id, new.id, scheduled.id, started.id}
        finished = exp.list_recorders(rtype="list", status="FINISHED")
        assert isinstance(finished, list)
        assert {r.id for r in finished} == {old.id, new.id, started.id}
        with pytest.raises(NotFoundError, match="has no run named 'nope'"):
            exp.get_recorder(recorder_name="nope", create=False)
        exp.delete_recorder(recorder_id=old.id)
        assert old.id not in exp.list_recorders()
        with pytest.raises(NotFoundError, match="is deleted"):
            manager.get_recorder(old.id)

    def test_search_records_dataframe(self, manager: MlflowExpManager, exp_name: str) -> None:
        exp = manager.get_exp(experiment_name=exp_name)
        for i in range(5):
            rec = exp.start(recorder_name=f"run{i}")
            rec.log_params(model="lgb" if i % 2 else "linear")
            rec.log_metrics(IC=i / 100)
            rec.end_run()
        frame = exp.search_records(filter_string="metrics.IC >= 0.02 and params.model = 'lgb'")
        assert sorted(frame["run_name"]) == ["run3"]
        every = manager.search_records([exp.id], order_by=["metrics.IC DESC"])
        assert every["run_name"].tolist() == [f"run{i}" for i in (4, 3, 2, 1, 0)]
        assert {"metrics.IC", "params.model", "tags.hostname", "status"} <= set(every.columns)
        assert str(every["start_time"].dtype).startswith("datetime64")
        empty = exp.search_records(filter_string="metrics.IC > 5")
        assert len(empty) == 0 and "run_id" in empty.columns
        with pytest.raises(TrackingError, match="unknown arguments"):
            exp.search_records(filter="x")

    def test_objects_and_artifacts(
        self, manager: MlflowExpManager, exp_name: str, tmp_path: Path
    ) -> None:
        import pandas as pd

        exp = manager.get_exp(experiment_name=exp_name)
        rec = exp.start()
        frame = pd.DataFrame(
            {"score": [0.1, 0.2]},
            index=pd.MultiIndex.from_tuples(
                [("2020-01-01", "A"), ("2020-01-01", "B")], names=["datetime", "instrument"]
            ),
        )
        rec.save_objects(**{"pred.pkl": frame})
        rec.save_objects(artifact_path="sig_analysis", **{"ic.pkl": pd.Series([0.5, 0.1])})
        pd.testing.assert_frame_equal(rec.load_object("pred.pkl"), frame)
        assert rec.load_object("sig_analysis/ic.pkl").tolist() == [0.5, 0.1]
        local = tmp_path / "notes.txt"
        local.write_text("hello")
        rec.log_artifact(local, "docs")
        rec.save_objects(local_path=local)
        assert set(rec.list_artifacts()) >= {"pred.pkl", "sig_analysis/", "docs/", "notes.txt"}
        assert rec.list_artifacts("docs") == ["docs/notes.txt"]
        downloaded = rec.download_artifact("docs/notes.txt", tmp_path / "dl")
        assert Path(downloaded).read_text() == "hello"
        for bad in ("../x.pkl", "/etc/passwd", "a/../../x", "a\\..\\x", ""):
            with pytest.raises(ArtifactPathError, match="Invalid artifact name"):
                payload: Any = {bad: 1}
                rec.save_objects(**payload)
        with pytest.raises(ArtifactPathError, match=r"contains '\.\.'"):
            rec.load_object("../pred.pkl")
        with pytest.raises(ArtifactPathError, match=r"contains '\.\.'"):
            rec.save_objects(artifact_path="../up", x=1)
        with pytest.raises(NotFoundError, match=r"has no artifact 'missing\.pkl'"):
            rec.load_object("missing.pkl")
        rec.end_run()
        assert pickle.loads(pickle.dumps([1]))  # the store did not monkeypatch pickle

    def test_long_params_are_kept_in_full(self, manager: MlflowExpManager, exp_name: str) -> None:
        rec = manager.get_exp(experiment_name=exp_name).start()
        long_value = "x" * 9000
        rec.log_params(config=long_value)
        stored = rec.list_params()["config"]
        assert "full value in artifact 'params/config.txt'" in stored
        assert Path(rec.download_artifact("params/config.txt")).read_text() == long_value
        rec.end_run()

    def test_nested_runs(self, manager: MlflowExpManager, exp_name: str) -> None:
        parent = manager.get_exp(experiment_name=exp_name).start(recorder_name="rolling")
        children = [parent.start_child(f"window{i}") for i in range(3)]
        for child in children:
            assert child.parent_id == parent.id
            child.end_run()
        assert parent.child_count == 3
        assert {c.id for c in parent.list_children()} == {c.id for c in children}
        parent.end_run()

    def test_provenance_tags(self, manager: MlflowExpManager, exp_name: str) -> None:
        import os

        rec = manager.get_exp(experiment_name=exp_name).start()
        # The provenance files are written in the background; any handle on the run sees them.
        other = manager.get_recorder(rec.id)
        assert "environment/packages.txt" in other.list_artifacts("environment")
        tags = rec.list_tags()
        assert tags["alphalab.pid"] == str(os.getpid())
        assert tags["alphalab.python"].startswith("CPython") or tags["alphalab.python"]
        packages = Path(rec.download_artifact("environment/packages.txt")).read_text()
        assert "mlflow==" in packages.lower()
        rec.log_provenance(config={"model": {"class": "LGBModel", "kwargs": {"lr": 0.1}}})
        params = rec.list_params()
        assert params["model.class"] == "LGBModel" and params["model.kwargs.lr"] == "0.1"
        assert "cmd-sys.argv" in params
        assert tags["alphalab.cmdline"]
        assert rec.load_object("config") == {"model": {"class": "LGBModel", "kwargs": {"lr": 0.1}}}
        rec.end_run()

    def test_latest_metric_is_the_one_at_the_highest_step(
        self, manager: MlflowExpManager, exp_name: str
    ) -> None:
        rec = manager.get_exp(experiment_name=exp_name).start()
        rec.log_metrics(step=5, x=0.5)
        rec.log_metrics(step=2, x=0.2, y=1.0)
        rec.log_metrics(step=3, y=float("inf"))
        rec.log_metrics(step=3, z=float("nan"))
        rec.log_metrics(step=1, z=1.0)
        latest = rec.list_metrics()
        assert latest["x"] == 0.5
        assert latest["y"] > 1e308  # +inf (SQL stores keep the largest finite double)
        assert math.isnan(latest["z"])
        assert rec.metric_history("x")["step"].tolist() == [2, 5]
        rec.end_run()

    def test_metric_values_are_checked(self, manager: MlflowExpManager, exp_name: str) -> None:
        from alphalab.exceptions import InvalidMetricError

        rec = manager.get_exp(experiment_name=exp_name).start()
        bad: Any = "high"
        with pytest.raises(InvalidMetricError, match="must be a real number"):
            rec.log_metrics(step=0, loss=bad)
        with pytest.raises(InvalidMetricError, match="step must be an integer"):
            rec.log_metrics(step="x", loss=1.0)  # type: ignore[arg-type]
        rec.end_run()
