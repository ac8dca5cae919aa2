"""Collectors, groups and ensembles on hand-made prediction frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphalab.exceptions import ConfigError
from alphalab.tasks import (
    AverageEnsemble,
    RecorderCollector,
    RollingEnsemble,
    RollingGroup,
    SingleKeyEnsemble,
)
from alphalab.tracking import R


def _pred(
    dates: list[str], values: list[float], insts: tuple[str, ...] = ("A", "B")
) -> pd.DataFrame:
    index = pd.MultiIndex.from_product(
        [pd.to_datetime(dates), list(insts)], names=["datetime", "instrument"]
    )
    return pd.DataFrame({"score": values}, index=index)


def test_rolling_ensemble_later_windows_win() -> None:
    early = _pred(["2020-01-02", "2020-01-03"], [1.0, 2.0, 3.0, 4.0])
    late = _pred(["2020-01-03", "2020-01-06"], [30.0, 40.0, 50.0, 60.0])
    # Dict order must not matter: windows are ordered by their first date.
    merged = RollingEnsemble()({"w2": late, "w1": early})
    assert merged["score"].tolist() == [1.0, 2.0, 30.0, 40.0, 50.0, 60.0]
    assert merged.index.is_monotonic_increasing and not merged.index.duplicated().any()
    with pytest.raises(ConfigError, match="got nothing to merge"):
        RollingEnsemble()({})
    with pytest.raises(ConfigError, match="the artifact of 'x' is a list"):
        RollingEnsemble()({"x": [1, 2]})


def test_average_ensemble_standardises_per_date() -> None:
    a = _pred(["2020-01-02"], [1.0, 3.0])  # z-scores -0.707, 0.707
    b = _pred(["2020-01-02"], [10.0, 0.0])  # z-scores 0.707, -0.707
    c = _pred(["2020-01-02"], [0.0, 100.0])
    merged = AverageEnsemble()({"a": a, "b": b})
    assert merged["score"].tolist() == pytest.approx([0.0, 0.0])
    z = 1 / np.sqrt(2)
    merged = AverageEnsemble()({"a": a, "c": c})
    assert merged["score"].tolist() == pytest.approx([-z, z])
    series = AverageEnsemble()({"a": a["score"], "b": b["score"], "c": c["score"]})
    assert isinstance(series, pd.Series)
    assert series.tolist() == pytest.approx([-z / 3, z / 3])


def test_groups() -> None:
    frames = {
        ("LGB", ("2020-01-02", "2020-01-03")): _pred(["2020-01-02"], [1.0, 2.0]),
        ("LGB", ("2020-01-06", "2020-01-07")): _pred(["2020-01-06"], [3.0, 4.0]),
        ("MLP", ("2020-01-02", "2020-01-03")): _pred(["2020-01-02"], [5.0, 6.0]),
    }
    grouped = RollingGroup()(frames)
    assert set(grouped) == {("LGB",), ("MLP",)}
    assert grouped[("LGB",)]["score"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert SingleKeyEnsemble()({"pred": {("MLP",): 7}}) == 7
    with pytest.raises(ConfigError, match="RollingGroup needs tuple keys"):
        RollingGroup()({"plain": 1})


def _run(exp: str, model: str, test: list[str], pred: pd.DataFrame) -> str:
    with R.start(experiment_name=exp) as rec:
        task = {"model": {"class": model}, "dataset": {"kwargs": {"segments": {"test": test}}}}
        rec.save_objects(task=task, **{"pred.pkl": pred})
    return rec.id


def test_recorder_collector_merges_rolling_runs(tracking_uri: str) -> None:
    _run(
        "coll",
        "LGB",
        ["2020-01-02", "2020-01-03"],
        _pred(["2020-01-02", "2020-01-03"], [1, 2, 3, 4]),
    )
    late = _run(
        "coll",
        "LGB",
        ["2020-01-03", "2020-01-06"],
        _pred(["2020-01-03", "2020-01-06"], [9, 9, 5, 6]),
    )
    collected = RecorderCollector("coll", process_list=RollingGroup())()
    assert collected["pred"][("LGB",)]["score"].tolist() == [1, 2, 9, 9, 5, 6]
    only_late = RecorderCollector("coll", rec_filter_func=lambda r: r.id == late).collect()
    assert list(only_late["pred"]) == [("LGB", ("2020-01-03", "2020-01-06"))]
    with pytest.raises(ConfigError, match="share the key"):
        RecorderCollector("coll", rec_key_func=lambda r: "same").collect()
    with pytest.raises(ConfigError, match="Unknown artifact key"):
        RecorderCollector("coll").collect(artifacts_key="label")
