"""The light task of the ``tasks`` and ``tune`` suites, written once for both sides.

A ``DataHandlerLP`` with a ``QlibDataLoader`` of 10 Alpha158 expressions and Qlib's label,
``Fillna`` on the features, ``DropnaLabel`` and a per-date z-score of the label for learning.
Processors that learn nothing (so where a rolled window fits them does not matter), a linear
model (OLS) for the rolling study and a small LightGBM for the tuning study.

Standard library only: ``steps_alphalab.py`` and the peer environment's ``steps_qlib.py``
both import this file by path and only differ in the module paths they fill in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

#: A subset of Alpha158 (same expressions and names as Qlib's ``Alpha158DL``).
FEATURES: tuple[tuple[str, str], ...] = (
    ("($close-$open)/$open", "KMID"),
    ("($high-$low)/$open", "KLEN"),
    ("Ref($close, 5)/$close", "ROC5"),
    ("Ref($close, 20)/$close", "ROC20"),
    ("Ref($close, 60)/$close", "ROC60"),
    ("Mean($close, 5)/$close", "MA5"),
    ("Mean($close, 20)/$close", "MA20"),
    ("Std($close, 20)/$close", "STD20"),
    ("Mean($volume, 5)/($volume+1e-12)", "VMA5"),
    ("Std($volume, 20)/($volume+1e-12)", "VSTD20"),
)
LABEL = ("Ref($close, -2)/Ref($close, -1) - 1", "LABEL0")

#: Where each component lives on each side.
MODULES: dict[str, dict[str, str]] = {
    "alphalab": {
        "dataset": "alphalab.data",
        "handler": "alphalab.data.handler",
        "loader": "alphalab.data.handler",
        "linear": "alphalab.model",
        "lightgbm": "alphalab.model",
        "record": "alphalab.workflow",
    },
    "qlib": {
        "dataset": "qlib.data.dataset",
        "handler": "qlib.data.dataset.handler",
        "loader": "qlib.data.dataset.loader",
        "linear": "qlib.contrib.model.linear",
        "lightgbm": "qlib.contrib.model.gbdt",
        "record": "qlib.workflow.record_temp",
    },
}

#: The tuning study's space: (parameter, low, high, log scale); names are alphalab's key paths.
TUNE_SPACE: tuple[tuple[str, float, float, bool], ...] = (
    ("task.model.kwargs.learning_rate", 0.02, 0.3, True),
    ("task.model.kwargs.num_leaves", 8, 64, False),
)


def segments(spec: dict[str, Any]) -> dict[str, list[str]]:
    """The market's test segment, the year before it to validate, the year before to train.

    Shorter than the market's own train segment so that a window loads a few years, not all.
    """
    test = spec["segments"]["test"]
    year = int(test[0][:4])
    return {
        "train": [f"{year - 2}-01-01", f"{year - 2}-12-31"],
        "valid": [f"{year - 1}-01-01", f"{year - 1}-12-31"],
        "test": list(test),
    }


def handler_config(spec: dict[str, Any], side: str) -> dict[str, Any]:
    """The handler: the light expressions over the universe, train start to test end.

    A rolling window keeps this range on both sides (``handler_mod`` only moves an end that
    falls before the window's test end).
    """
    mods = MODULES[side]
    seg = segments(spec)
    return {
        "class": "DataHandlerLP",
        "module_path": mods["handler"],
        "kwargs": {
            "instruments": spec["universe"],
            "start_time": seg["train"][0],
            "end_time": seg["test"][1],
            "data_loader": {
                "class": "QlibDataLoader",
                "module_path": mods["loader"],
                "kwargs": {
                    "config": {
                        "feature": [[e for e, _ in FEATURES], [n for _, n in FEATURES]],
                        "label": [[LABEL[0]], [LABEL[1]]],
                    }
                },
            },
            "infer_processors": [{"class": "Fillna", "kwargs": {"fields_group": "feature"}}],
            "learn_processors": [
                {"class": "DropnaLabel"},
                {"class": "CSZScoreNorm", "kwargs": {"fields_group": "label"}},
            ],
        },
    }


def dataset_config(spec: dict[str, Any], side: str) -> dict[str, Any]:
    """The dataset: the handler and the segments of :func:`segments`."""
    return {
        "class": "DatasetH",
        "module_path": MODULES[side]["dataset"],
        "kwargs": {
            "handler": handler_config(spec, side),
            "segments": segments(spec),
        },
    }


def rolling_task(spec: dict[str, Any], side: str) -> dict[str, Any]:
    """The task a rolling study splits: OLS on the light features, predictions recorded."""
    mods = MODULES[side]
    return {
        "model": {
            "class": "LinearModel",
            "module_path": mods["linear"],
            "kwargs": {"estimator": "ols"},
        },
        "dataset": dataset_config(spec, side),
        "record": [{"class": "SignalRecord", "module_path": mods["record"]}],
    }


def tune_model(spec: dict[str, Any], side: str) -> dict[str, Any]:
    """The model the tuning study tunes: a small, deterministic LightGBM (one thread)."""
    return {
        "class": "LGBModel",
        "module_path": MODULES[side]["lightgbm"],
        "kwargs": {
            "loss": "mse",
            "num_boost_round": 40,
            "early_stopping_rounds": 10,
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_data_in_leaf": 200,
            # one thread: the same trees on every run, and no OpenMP thrashing when the
            # 2-core machine is busy (two threads can be 10x slower per round then)
            "num_threads": 1,
            "seed": 0,
            "deterministic": True,
            "force_row_wise": True,
        },
    }


def run_rolling(
    task: dict[str, Any],
    step: int,
    rolling_gen: Any,
    trainer_cls: Any,
    collect: Callable[[], dict[Any, Any]],
) -> tuple[float, dict[str, float], int, dict[Any, Any]]:
    """The rolling study both sides time, with their own classes: generate the windows with
    ``RollingGen(step, ROLL_SD)``, train them with ``TrainerR`` (``train`` + ``end_train``),
    then ``collect()``. Returns seconds, the phases' seconds, windows and what was collected."""
    phases: dict[str, float] = {}
    began = time.perf_counter()
    tasks = rolling_gen(step=step, rtype=rolling_gen.ROLL_SD).generate(task)
    phases["generate"] = time.perf_counter() - began
    trainer = trainer_cls(experiment_name="rolling")
    recorders = trainer.end_train(trainer.train(tasks))
    phases["train"] = time.perf_counter() - began - phases["generate"]
    collected = collect()
    seconds = time.perf_counter() - began
    phases["collect"] = seconds - phases["train"] - phases["generate"]
    return seconds, phases, len(recorders), collected
