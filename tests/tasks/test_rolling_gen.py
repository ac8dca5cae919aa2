"""RollingGen and MultiHorizonGenBase against hand-computed trading-day windows."""

from __future__ import annotations

from typing import Any

import pytest

from alphalab.exceptions import ConfigError
from alphalab.tasks import MultiHorizonGenBase, RollingGen, task_generator

# 14 trading days (Jan 1 and weekends are not trading days); positions 0..13.
CAL = [
    "2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07", "2020-01-08", "2020-01-09",
    "2020-01-10", "2020-01-13", "2020-01-14", "2020-01-15", "2020-01-16", "2020-01-17",
    "2020-01-20", "2020-01-21",
]  # fmt: skip


def _task(test: list[Any] | None = None) -> dict[str, Any]:
    return {
        "model": {"class": "LGBModel"},
        "dataset": {
            "class": "DatasetH",
            "kwargs": {
                "handler": {
                    "class": "Alpha158",
                    "kwargs": {
                        "start_time": "2020-01-02",
                        "end_time": "2020-01-10",
                        "fit_start_time": "2020-01-02",
                        "fit_end_time": "2020-01-07",
                    },
                },
                "segments": {
                    "train": ["2020-01-02", "2020-01-07"],
                    "valid": ["2020-01-08", "2020-01-09"],
                    "test": test or ["2020-01-10", "2020-01-21"],
                },
            },
        },
    }


def _segs(tasks: list[dict[str, Any]]) -> list[dict[str, list[str]]]:
    return [t["dataset"]["kwargs"]["segments"] for t in tasks]


def test_expanding_windows() -> None:
    tasks = RollingGen(step=3, rtype="expanding", calendar=CAL).generate(_task())
    assert _segs(tasks) == [
        {
            "train": ["2020-01-02", "2020-01-07"],
            "valid": ["2020-01-08", "2020-01-09"],
            "test": ["2020-01-10", "2020-01-14"],
        },
        {
            "train": ["2020-01-02", "2020-01-10"],
            "valid": ["2020-01-13", "2020-01-14"],
            "test": ["2020-01-15", "2020-01-17"],
        },
        {
            "train": ["2020-01-02", "2020-01-15"],
            "valid": ["2020-01-16", "2020-01-17"],
            "test": ["2020-01-20", "2020-01-21"],
        },
    ]
    handler = tasks[1]["dataset"]["kwargs"]["handler"]["kwargs"]
    assert handler["end_time"] == "2020-01-17"  # widened to the test end
    assert handler["fit_start_time"] == "2020-01-02"
    assert handler["fit_end_time"] == "2020-01-10"  # follows the train segment
    assert tasks[0]["model"] == {"class": "LGBModel"}


def test_sliding_windows_and_snapping() -> None:
    # A Saturday test start snaps to the next trading day (2020-01-13, position 7).
    tasks = RollingGen(step=4, rtype="sliding", calendar=CAL).generate(_task(["2020-01-11", None]))
    assert _segs(tasks) == [
        {
            "train": ["2020-01-02", "2020-01-07"],
            "valid": ["2020-01-08", "2020-01-09"],
            "test": ["2020-01-13", "2020-01-16"],
        },
        {
            "train": ["2020-01-08", "2020-01-13"],
            "valid": ["2020-01-14", "2020-01-15"],
            "test": ["2020-01-17", "2020-01-21"],
        },
    ]
    assert tasks[0]["dataset"]["kwargs"]["handler"]["kwargs"]["end_time"] is not None


def test_trunc_days_cut_before_each_test_start() -> None:
    tasks = RollingGen(step=3, trunc_days=2, calendar=CAL).generate(_task())
    assert _segs(tasks)[0]["valid"] == ["2020-01-08", "2020-01-08"]  # <= position 6 - 2
    assert _segs(tasks)[1]["valid"] == ["2020-01-13", "2020-01-13"]  # <= position 9 - 2
    assert _segs(tasks)[1]["train"] == ["2020-01-02", "2020-01-10"]


def test_task_generator_chains_generators() -> None:
    class Seeds(RollingGen):
        def generate(self, task: dict[str, Any]) -> list[dict[str, Any]]:
            return [{**task, "seed": s} for s in (1, 2)]

    tasks = task_generator(_task(), [RollingGen(step=6, calendar=CAL), Seeds()])
    assert len(tasks) == 4
    assert [(t["seed"], _segs([t])[0]["test"][0]) for t in tasks] == [
        (1, "2020-01-10"),
        (2, "2020-01-10"),
        (1, "2020-01-20"),
        (2, "2020-01-20"),
    ]


class LabelHorizon(MultiHorizonGenBase):
    def set_horizon(self, task: dict[str, Any], hr: int) -> None:
        task["label"] = f"Ref($close, -{hr})/$close - 1"


def test_multi_horizon_truncates_by_horizon() -> None:
    tasks = LabelHorizon(horizon=[1, 3], label_leak_n=1, calendar=CAL).generate(_task())
    assert [t["label"] for t in tasks] == [
        "Ref($close, -1)/$close - 1",
        "Ref($close, -3)/$close - 1",
    ]
    # test starts at position 6: horizon 1 cuts at 6-2=4, horizon 3 at 6-4=2.
    assert _segs(tasks)[0]["valid"] == ["2020-01-08", "2020-01-08"]
    assert _segs(tasks)[1]["train"] == ["2020-01-02", "2020-01-06"]
    assert _segs(tasks)[1]["valid"] == ["2020-01-06", "2020-01-06"]


def test_rolling_on_the_market_calendar(small_market: Any) -> None:
    task = _task(["2020-06-01", "2020-06-30"])
    task["dataset"]["kwargs"]["segments"]["train"] = ["2019-06-03", "2020-04-30"]
    task["dataset"]["kwargs"]["segments"]["valid"] = ["2020-05-04", "2020-05-29"]
    days = [str(d.date()) for d in small_market.calendar("2020-06-01", "2020-06-30")]
    tasks = RollingGen(step=10).generate(task)
    tests = [_segs([t])[0]["test"] for t in tasks]
    assert tests == [[days[i], days[min(i + 9, len(days) - 1)]] for i in range(0, len(days), 10)]


def test_bad_arguments_are_reported() -> None:
    with pytest.raises(ConfigError, match="step must be an integer >= 1"):
        RollingGen(step=0)
    with pytest.raises(ConfigError, match="rtype must be 'expanding' or 'sliding'"):
        RollingGen(rtype="rolling")
    with pytest.raises(ConfigError, match="after the last trading day 2020-01-21"):
        RollingGen(calendar=CAL).generate(_task(["2020-02-01", None]))
    with pytest.raises(ConfigError, match=r"needs dataset\.kwargs\.segments"):
        RollingGen(calendar=CAL).generate({"model": {}})
