"""``R`` on PostgreSQL (plain ``postgresql://`` URL): lifecycle, FAILED path, resume, nesting."""

from __future__ import annotations

import pytest

from alphalab.tracking import R, RecorderStatus

pytestmark = pytest.mark.postgres


def test_r_on_postgres(pg_tracking_url: str, unique_name: str, isolated_settings: object) -> None:
    R.reset()
    assert pg_tracking_url.startswith("postgresql://")
    with R.start(uri=pg_tracking_url, experiment_name=unique_name, recorder_name="a") as rec:
        assert R.get_uri().startswith("sqlite")  # uri= scopes the run, not the process
        R.log_params(lr=0.1)
        for step in range(300):
            R.log_metrics(step=step, loss=float(step))
        with R.start(nested=True, recorder_name="child") as child:
            R.log_metrics(IC=0.05)
        R.save_objects(**{"pred.pkl": [1, 2]})
        assert rec.process_state == "alive"
    assert rec.status is RecorderStatus.FINISHED
    assert rec.child_count == 1 and child.parent_id == rec.id
    assert rec.metric_history("loss")["step"].tolist() == list(range(300))
    assert rec.load_object("pred.pkl") == [1, 2]

    with (
        pytest.raises(RuntimeError, match="boom"),
        R.start(uri=pg_tracking_url, recorder_id=rec.id, resume=True),
    ):
        R.log_metrics(step=300, loss=300.0)
        raise RuntimeError("boom")
    assert rec.status is RecorderStatus.FAILED
    assert rec.list_tags()["alphalab.error"] == "RuntimeError: boom"
    assert rec.metric_history("loss")["step"].tolist() == list(range(301))
    with R.uri_context(pg_tracking_url):
        frame = R.search_records([rec.experiment_id], filter_string="params.lr = '0.1'")
        assert frame["run_id"].tolist() == [rec.id]
        R.delete_exp(experiment_name=unique_name)
        assert unique_name not in R.list_experiments()
    R.reset()
