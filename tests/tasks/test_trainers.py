"""Trainers on the small simulated market: direct, delayed, through the pool."""

from __future__ import annotations

import threading

from alphalab.tasks import (
    DelayTrainerR,
    DelayTrainerRM,
    TaskManager,
    TrainerR,
    TrainerRM,
)
from alphalab.testing._tasks import tiny_task
from alphalab.tracking import R, RecorderStatus

TASKS = [tiny_task(seed=0), tiny_task(seed=1)]


def _runs(experiment: str) -> int:
    return len(R.get_exp(experiment_name=experiment).list_recorders("list"))


def test_trainer_r(tracking_uri: str, small_market: object) -> None:
    recorders = TrainerR(experiment_name="tr").train(TASKS)
    assert len(recorders) == 2 and recorders[0].id != recorders[1].id
    for rec in recorders:
        assert rec.status is RecorderStatus.FINISHED
        assert "pred.pkl" in rec.list_artifacts()
        assert rec.list_tags()["train_status"] == "end_task_train"
    assert rec.load_object("task")["model"]["kwargs"]["seed"] == 1
    assert TrainerR(experiment_name="tr").end_train(recorders) == recorders


def test_delay_trainer_r(tracking_uri: str, small_market: object) -> None:
    trainer = DelayTrainerR(experiment_name="delay")
    assert trainer.is_delay()
    recorders = trainer.train(TASKS[:1])
    (rec,) = recorders
    assert rec.list_tags()["train_status"] == "begin_task_train"
    assert "pred.pkl" not in rec.list_artifacts()
    (done,) = trainer.end_train(recorders)
    assert done.id == rec.id and done.list_tags()["train_status"] == "end_task_train"
    assert "pred.pkl" in done.list_artifacts() and done.status is RecorderStatus.FINISHED
    assert _runs("delay") == 1


def test_trainer_rm_reuses_finished_tasks(tracking_uri: str, small_market: object) -> None:
    trainer = TrainerRM(experiment_name="rm", task_pool="rm-pool", progress=False)
    first = trainer.train(TASKS)
    assert len(first) == 2 and _runs("rm") == 2
    tm = TaskManager("rm-pool")
    assert tm.task_stat() == {"done": 2}
    assert sorted(t.result for t in tm.query()) == sorted(r.id for r in first)
    again = trainer.train(list(reversed(TASKS)))  # same tasks: stored results, no training
    assert [r.id for r in again] == [first[1].id, first[0].id]
    assert _runs("rm") == 2
    assert [r.list_tags()["train_status"] for r in trainer.end_train(again)] == [
        "end_task_train"
    ] * 2


def test_trainer_rm_waits_for_workers(tracking_uri: str, small_market: object) -> None:
    trainer = TrainerRM(
        experiment_name="rm-w", skip_run_task=True, progress=False, poll_interval=0.1, timeout=60
    )
    assert trainer.has_worker()
    worker = threading.Thread(target=trainer.worker)
    result: list[object] = []
    waiter = threading.Thread(target=lambda: result.extend(trainer.train(TASKS)))
    waiter.start()
    while not TaskManager("rm-w").task_stat():
        threading.Event().wait(0.05)
    worker.start()
    waiter.join(timeout=60)
    worker.join(timeout=60)
    assert len(result) == 2 and _runs("rm-w") == 2


def test_delay_trainer_rm(tracking_uri: str, small_market: object) -> None:
    trainer = DelayTrainerRM(experiment_name="drm", progress=False, poll_interval=0.1)
    recorders = trainer.train(TASKS)
    tm = TaskManager("drm")
    assert tm.task_stat() == {"part_done": 2}
    assert {r.list_tags()["train_status"] for r in recorders} == {"begin_task_train"}
    finished = trainer.end_train(recorders)
    assert tm.task_stat() == {"done": 2}
    assert [r.id for r in finished] == [r.id for r in recorders]
    assert all("pred.pkl" in r.list_artifacts() for r in finished)
    assert {r.list_tags()["train_status"] for r in finished} == {"end_task_train"}


def test_failed_pool_tasks_are_left_out(tracking_uri: str, small_market: object) -> None:
    bad = tiny_task(seed=5)
    bad["model"]["class"] = "NoSuchModel"
    trainer = TrainerRM(experiment_name="rm-bad", progress=False)
    recorders = trainer.train([bad, TASKS[0]])
    assert len(recorders) == 1
    (failed,) = TaskManager("rm-bad").query({"status": "failed"})
    assert "NoSuchModel" in (failed.error or "") and failed.attempts == 3


def test_delay_phases_through_the_worker_cli(tracking_uri: str, small_market: object) -> None:
    from typer.testing import CliRunner

    from alphalab.cli import app

    tm = TaskManager("phases")
    tm.create_task(TASKS[:1])
    base = ["worker", "--pool", "phases", "--experiment", "ph"]
    begin = CliRunner().invoke(app, [*base, "--phase", "begin"])
    assert begin.exit_code == 0, begin.output
    (task,) = tm.query()
    assert task.status.value == "part_done"
    rec = R.get_recorder(recorder_id=task.result)
    assert rec.list_tags()["train_status"] == "begin_task_train"
    end = CliRunner().invoke(app, [*base, "--phase", "end"])
    assert end.exit_code == 0, end.output
    assert tm.re_query(task.id).status.value == "done"
    assert R.get_recorder(recorder_id=task.result).list_tags()["train_status"] == "end_task_train"
    bad = CliRunner().invoke(app, [*base, "--phase", "middle"])
    assert bad.exit_code == 1 and "--phase must be one of train, begin, end" in bad.output
