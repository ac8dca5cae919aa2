"""The objective of a study: one trial = one task run as a child of the study's run."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from alphalab.exceptions import TuneError
from alphalab.logging import get_logger
from alphalab.model import training_reporter
from alphalab.tracking import R, Recorder, RecorderStatus
from alphalab.tune._config import Criterion, TuneConfig, TunerSpec, guess_direction, trial_task
from alphalab.tune._space import set_paths
from alphalab.workflow import run_task

if TYPE_CHECKING:
    import optuna

logger = get_logger(__name__)

#: Optuna user attributes and MLflow tags that link trials and runs.
ATTR_RUN_ID = "alphalab.run_id"
ATTR_OVERRIDES = "alphalab.overrides"
ATTR_PARENT_RUN = "alphalab.parent_run_id"
ATTR_ERROR = "alphalab.error"
TAG_STUDY = "alphalab.tune.study"
TAG_TUNER = "alphalab.tune.tuner"
TAG_TRIAL = "alphalab.tune.trial"
TAG_STATE = "alphalab.tune.state"


def to_json_value(value: Any) -> Any:
    """``value`` as JSON can store it (dates and other objects become strings)."""
    return json.loads(json.dumps(value, default=str))


class _Curve:
    """Training reporter of one trial: logs the curve, keeps the criterion, reports to Optuna."""

    def __init__(self, trial: optuna.Trial, criterion: Criterion, run: Recorder) -> None:
        import optuna

        self.trial = trial
        self.criterion = criterion
        self.run = run
        self.values: list[float] = []
        self.reported: set[str] = set()
        # Without a pruner nothing reads intermediate values, and each report is a write to
        # the study's database: the curve is in the trial's run anyway.
        pruning = not isinstance(trial.study.pruner, optuna.pruners.NopPruner)
        self.pruning_metric = criterion.pruning_metric if pruning else None
        self.last_step = -1

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        import optuna

        self.run.log_metrics(step, **metrics)
        self.reported.update(metrics)
        if self.criterion.source == "model" and self.criterion.metric in metrics:
            self.values.append(float(metrics[self.criterion.metric]))
        if self.pruning_metric == "auto":
            valid = [k for k in metrics if k.startswith("valid.")]
            self.pruning_metric = valid[0] if valid else None
        metric = self.pruning_metric
        if metric is None or metric not in metrics or step <= self.last_step:
            return
        value = float(metrics[metric])
        if not math.isfinite(value):
            return
        self.last_step = step
        direction = self.criterion.pruning_direction or guess_direction(metric)
        sign = 1.0 if direction == self.criterion.direction else -1.0
        self.trial.report(sign * value, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} ({metric} = {value:.6g})")

    def best(self) -> float:
        if not self.values:
            reported = ", ".join(sorted(self.reported)) or "nothing"
            raise TuneError(
                f"The criterion {self.criterion.metric!r} is a training curve, but the model "
                f"reported {reported}; pick one of those as report_factor/metric"
            )
        pick = max if self.criterion.direction == "maximize" else min
        return pick(self.values)


class TrialObjective:
    """Callable for ``study.optimize``: sample, build the task, run it in a child run, score.

    Args:
        config: The tune configuration.
        tuner: The tuner whose space is sampled.
        base_overrides: Key-path values applied before the sampled ones (earlier tuners'
            best values).
        parent_run_id: The study's run; every trial is a child run of it.
        on_start: Called once the trial exists in the storage (releases the slot lock).
    """

    def __init__(
        self,
        config: TuneConfig,
        tuner: TunerSpec,
        base_overrides: Mapping[str, Any],
        parent_run_id: str,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.tuner = tuner
        self.base_overrides = dict(base_overrides)
        self.parent_run_id = parent_run_id
        self.on_start = on_start

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        if self.on_start is not None:
            self.on_start()
        sampled = {path: space.suggest(trial) for path, space in self.tuner.space.items()}
        overrides = {**self.base_overrides, **sampled}
        trial.set_user_attr(ATTR_OVERRIDES, json.dumps(to_json_value(overrides)))
        workflow = set_paths(self.config.workflow, overrides)
        task = trial_task(workflow, self.config.criterion, self.config.trial_records)
        parent = R.get_exp_manager().get_recorder(self.parent_run_id)
        run = parent.start_child(recorder_name=f"{self.tuner.name}-trial-{trial.number}")
        trial.set_user_attr(ATTR_RUN_ID, run.id)
        curve = _Curve(trial, self.config.criterion, run)
        try:
            run.set_tags(
                **{
                    TAG_STUDY: self.config.study_name,
                    TAG_TUNER: self.tuner.name,
                    TAG_TRIAL: str(trial.number),
                    "alphalab.tune.optuna_study": trial.study.study_name,
                }
            )
            run.log_params(**{k: _param_text(v) for k, v in overrides.items()})
            self._save_workflow(run, workflow)
            with training_reporter(curve):
                run_task(task, run)
            value = self._value(run, curve)
        except optuna.TrialPruned:
            run.set_tags(**{TAG_STATE: "PRUNED"})
            run.end_run(RecorderStatus.KILLED)
            raise
        except Exception as e:
            trial.set_user_attr(ATTR_ERROR, f"{type(e).__name__}: {e}"[:2000])
            run.set_tags(**{TAG_STATE: "FAIL"})
            run.end_run(RecorderStatus.FAILED, error=e)
            raise
        except BaseException as e:
            run.end_run(RecorderStatus.KILLED, error=e)
            raise
        if not math.isfinite(value):
            trial.set_user_attr(
                ATTR_ERROR, f"the criterion {self.config.criterion.metric!r} is {value}"
            )
            run.set_tags(**{TAG_STATE: "FAIL", "alphalab.error": f"criterion is {value}"})
            run.end_run(RecorderStatus.FAILED)
            return value  # Optuna records a NaN objective as a failed trial
        run.log_metrics(None, objective=value)
        run.set_tags(**{TAG_STATE: "COMPLETE"})
        run.end_run(RecorderStatus.FINISHED)
        return value

    @staticmethod
    def _save_workflow(run: Recorder, workflow: Mapping[str, Any]) -> None:
        with tempfile.TemporaryDirectory(prefix="alphalab-trial-") as tmp:
            path = Path(tmp) / "trial_workflow.yaml"
            path.write_text(dump_workflow(workflow), encoding="utf-8")
            run.log_artifact(path, "workflow")

    def _value(self, run: Recorder, curve: _Curve) -> float:
        criterion = self.config.criterion
        if criterion.source == "model":
            return curve.best()
        metrics = run.list_metrics()
        if criterion.metric not in metrics:
            names = ", ".join(sorted(k for k in metrics if "." not in k or k.startswith("1day")))
            raise TuneError(
                f"The trial's records did not log the criterion {criterion.metric!r}; "
                f"logged: {names or 'nothing'}"
            )
        return float(metrics[criterion.metric])


def _param_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(to_json_value(value))


def dump_workflow(workflow: Mapping[str, Any]) -> str:
    """A workflow as YAML text that ``alphalab run`` reads back to the same mapping."""
    return yaml.safe_dump(dict(workflow), sort_keys=False, allow_unicode=True)


def trial_overrides(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The key-path values a trial ran with (inherited ones included)."""
    text = trial.user_attrs.get(ATTR_OVERRIDES)
    if text is None:
        return dict(trial.params)
    return dict(json.loads(text))


def apply_overrides(config: TuneConfig, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The full workflow with ``overrides`` set (records as in the base workflow)."""
    return set_paths(config.workflow, overrides)
