"""What a study leaves behind: best params as JSON, a runnable best config, plots, a table."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from alphalab.logging import get_logger
from alphalab.tune._objective import ATTR_RUN_ID, to_json_value, trial_overrides

if TYPE_CHECKING:
    import optuna

logger = get_logger(__name__)


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, duration, run id and the params."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        duration = None
        if trial.datetime_start is not None and trial.datetime_complete is not None:
            duration = (trial.datetime_complete - trial.datetime_start).total_seconds()
        row: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state.name,
            "value": trial.value,
            "duration_s": duration,
            "run_id": trial.user_attrs.get(ATTR_RUN_ID),
        }
        row.update({f"params.{k}": v for k, v in trial.params.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def best_summary(study: optuna.Study, tuner: str) -> dict[str, Any] | None:
    """The tuner's best trial as a JSON-ready mapping (None when no trial completed)."""
    optuna = __import__("optuna")
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return None
    best = study.best_trial
    return {
        "tuner": tuner,
        "study": study.study_name,
        "direction": study.direction.name.lower(),
        "best_trial": best.number,
        "best_value": best.value,
        "params": to_json_value(dict(best.params)),
        "overrides": trial_overrides(best),
        "run_id": best.user_attrs.get(ATTR_RUN_ID),
        "n_trials": len(study.get_trials(deepcopy=False)),
    }


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    """Write ``data`` as indented JSON (creating folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(data), indent=2, default=str) + "\n", encoding="utf-8")
    return path


def _figure(width: float = 8.0, height: float = 4.5) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    optuna = __import__("optuna")
    return list(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def plot_history(study: optuna.Study, path: Path) -> Path:
    """Objective value per trial and the best value so far."""
    trials = _complete(study)
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    numbers = [t.number for t in trials]
    values = [float(t.value) for t in trials if t.value is not None]
    pick = max if study.direction.name == "MAXIMIZE" else min
    best = [pick(values[: i + 1]) for i in range(len(values))]
    ax.scatter(numbers, values, s=18, label="trial value")
    ax.step(numbers, best, where="post", color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("objective")
    ax.set_title(f"Optimisation history: {study.study_name}")
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_importances(study: optuna.Study, path: Path) -> Path | None:
    """Parameter importances (Optuna's default evaluator); None with too few trials."""
    optuna = __import__("optuna")
    if len(_complete(study)) < 2:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            importances = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError) as e:  # e.g. every trial has the same params
        logger.warning("No parameter importances for %s: %s", study.study_name, e)
        return None
    if not importances:
        return None
    names = list(importances)[::-1]
    fig = _figure(8.0, 1.0 + 0.4 * len(names))
    ax = fig.add_subplot(1, 1, 1)
    ax.barh(names, [importances[n] for n in names])
    ax.set_xlabel("importance")
    ax.set_title(f"Parameter importances: {study.study_name}")
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_parallel(study: optuna.Study, path: Path) -> Path | None:
    """Parallel coordinates: one line per completed trial over its scaled params."""
    trials = _complete(study)
    names = sorted({k for t in trials for k in t.params})
    if not trials or not names:
        return None
    scaled = []
    for name in names:
        column = [t.params.get(name) for t in trials]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in column):
            numbers = [float(v) for v in column if v is not None]
        else:
            levels = sorted({str(v) for v in column})
            numbers = [float(levels.index(str(v))) for v in column]
        low, high = min(numbers), max(numbers)
        span = high - low if high > low else 1.0
        scaled.append([(v - low) / span for v in numbers])
    values = [math.nan if t.value is None else float(t.value) for t in trials]
    vmin, vmax = min(values), max(values)
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    fig = _figure(max(6.0, 1.6 * len(names)), 4.5)
    ax = fig.add_subplot(1, 1, 1)
    for i, value in enumerate(values):
        shade = (value - vmin) / (vmax - vmin) if vmax > vmin else 0.5
        ax.plot(range(len(names)), [col[i] for col in scaled], color=cmap(shade), alpha=0.8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n.rsplit(".", 1)[-1] for n in names], rotation=20)
    ax.set_ylabel("scaled value")
    ax.set_title(f"Parallel coordinates (colour: objective {vmin:.4g} .. {vmax:.4g})")
    fig.tight_layout()
    fig.savefig(path)
    return path


def write_plots(study: optuna.Study, folder: Path) -> list[Path]:
    """The three plots of one tuner's study as PNG files (those that can be drawn)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not _complete(study):
        return []
    made = [
        plot_history(study, folder / "optimization_history.png"),
        plot_importances(study, folder / "param_importances.png"),
        plot_parallel(study, folder / "parallel_coordinate.png"),
    ]
    return [p for p in made if p is not None]


def global_best(summaries: Sequence[Mapping[str, Any]], direction: str) -> dict[str, Any] | None:
    """The best of the tuners' best trials."""
    if not summaries:
        return None
    pick = max if direction == "maximize" else min
    return dict(pick(summaries, key=lambda s: float(s["best_value"])))
