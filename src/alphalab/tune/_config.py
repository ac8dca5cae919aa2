"""The TUNE.yaml file: base workflow, experiment, study, criterion and the tuner pipeline.

Shape (every section but ``tuner_pipeline`` optional)::

    BASE_CONFIG_PATH: workflow.yaml       # the base workflow (or put its keys inline,
    workflow: {...}                       #   or under 'workflow:')
    experiment: {name: tune_lgb, output_dir: ./tune_lgb}
    study: {name: lgb, storage: null, heartbeat_interval: 10, grace_period: 30,
            retry_stale: 1, max_consecutive_failures: 10}
    optimization_criteria: {metric: Rank IC, direction: max}
    #   or {report_type: signal|model|excess_return_with_cost|..., report_factor: ...,
    #       optim_type: max|min}, plus pruning_metric / pruning_direction
    trial_records: all                    # or 'needed': only the records the criterion needs
    tuner_pipeline:
      - name: model
        n_trials: 20                      # Qlib's max_evals accepted
        sampler: tpe                      # tpe | random | cmaes | grid, or {type: tpe, seed: 1}
        pruner: median                    # median | hyperband | none, or {type: median, ...}
        spaces: [lightgbm]                # ready-made spaces
        space:
          task.model.kwargs.learning_rate: {type: float, low: 0.01, high: 0.3, log: true}

Tuners run in order; each starts from the base workflow with the best values of the tuners
before it applied (set ``inherit_best: false`` on a tuner to start from the base instead).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from alphalab.config import (
    RUNS_DIR_NAME,
    deep_merge,
    load_config_file,
    validate_workflow,
)
from alphalab.exceptions import ConfigError
from alphalab.tune._space import (
    ParamSpace,
    get_path,
    parse_space,
    preset_space,
    unshare,
    validate_space_paths,
)

Direction = Literal["maximize", "minimize"]
CriterionSource = Literal["model", "signal", "portfolio", "other"]

TUNE_KEYS = (
    "experiment",
    "study",
    "optimization_criteria",
    "tuner_pipeline",
    "trial_records",
    "workflow",
)
SAMPLERS = ("tpe", "random", "cmaes", "grid")
PRUNERS = ("median", "hyperband", "none")

#: Metrics of SigAnaRecord (the last four need ``ana_long_short: true``).
SIGNAL_METRICS = (
    "IC",
    "ICIR",
    "Rank IC",
    "Rank ICIR",
    "Long-Short Ann Return",
    "Long-Short Ann Sharpe",
    "Long-Avg Ann Return",
    "Long-Avg Ann Sharpe",
)
_PORTFOLIO_TYPES = ("excess_return_with_cost", "excess_return_without_cost")
_PORTFOLIO_FACTORS = ("mean", "std", "annualized_return", "information_ratio", "max_drawdown")
_HIGHER_IS_BETTER = ("ic", "auc", "ndcg", "map", "score", "sharpe", "return", "ratio", "icir")


@dataclass(frozen=True)
class Criterion:
    """What a trial is scored by, and the training curve reported for pruning.

    Attributes:
        metric: Metric name (``Rank IC``, ``1day.excess_return_with_cost.information_ratio``,
            or a training curve such as ``valid.l2`` when ``source`` is ``model``).
        direction: ``maximize`` or ``minimize``.
        source: Where the value comes from: ``model`` (best point of the training curve),
            ``signal`` (SigAnaRecord), ``portfolio`` (PortAnaRecord) or ``other`` (any metric
            the records log).
        pruning_metric: Training-curve metric reported each round/epoch for pruning; ``auto``
            takes the first ``valid.*`` metric the model reports; None turns reporting off.
        pruning_direction: Whether lower or higher pruning values are better (None: guessed
            from the name: losses are minimised).
    """

    metric: str
    direction: Direction
    source: CriterionSource
    pruning_metric: str | None = "auto"
    pruning_direction: Direction | None = None


def guess_direction(metric: str) -> Direction:
    """``maximize`` for scores (IC, AUC, returns, ratios...), ``minimize`` for losses."""
    name = metric.rsplit(".", 1)[-1].lower().replace(" ", "_")
    if name in ("max_drawdown",):
        return "maximize"  # drawdowns are negative numbers: closer to 0 is better
    if any(name == word or name.endswith(word) for word in _HIGHER_IS_BETTER):
        return "maximize"
    if metric.startswith(("valid.", "train.")):
        return "minimize"
    return "maximize"


def _direction(value: Any, where: str) -> Direction:
    text = str(value).lower()
    if text in ("max", "maximize", "maximise"):
        return "maximize"
    if text in ("min", "minimize", "minimise"):
        return "minimize"
    if text == "correlation":
        raise ConfigError(
            f"{where}: Qlib's optim_type 'correlation' is not supported; use max or min"
        )
    raise ConfigError(f"{where}: expected max/maximize or min/minimize; got {value!r}")


def _source_of(metric: str) -> CriterionSource:
    if metric in SIGNAL_METRICS:
        return "signal"
    if metric.split(".", 1)[-1].startswith(_PORTFOLIO_TYPES):
        return "portfolio"
    if metric.startswith(("valid.", "train.")):
        return "model"
    return "other"


def parse_criterion(spec: Any, where: str) -> Criterion:
    """Validate the ``optimization_criteria`` section."""
    if spec is None:
        spec = {"metric": "Rank IC"}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a mapping; got {spec!r}")
    known = {
        "metric",
        "report_type",
        "report_factor",
        "direction",
        "optim_type",
        "freq",
        "pruning_metric",
        "pruning_direction",
    }
    unknown = set(spec) - known
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; expected {sorted(known)}")
    metric = spec.get("metric")
    report_type, factor = spec.get("report_type"), spec.get("report_factor")
    if metric is not None and (report_type is not None or factor is not None):
        raise ConfigError(f"{where}: give either 'metric' or 'report_type'/'report_factor'")
    source: CriterionSource
    if metric is not None:
        if not isinstance(metric, str) or not metric.strip():
            raise ConfigError(f"{where}.metric: expected a metric name; got {metric!r}")
        source = _source_of(metric)
    else:
        if report_type is None or factor is None:
            raise ConfigError(
                f"{where}: give 'metric' (e.g. 'Rank IC') or both 'report_type' and 'report_factor'"
            )
        metric, source = _from_report(str(report_type), str(factor), spec.get("freq"), where)
    if "direction" in spec and "optim_type" in spec:
        raise ConfigError(f"{where}: give either 'direction' or Qlib's 'optim_type', not both")
    raw_direction = spec.get("direction", spec.get("optim_type"))
    direction = (
        guess_direction(metric)
        if raw_direction is None
        else _direction(raw_direction, f"{where}.direction")
    )
    pruning = spec.get("pruning_metric", metric if source == "model" else "auto")
    if pruning is not None and (not isinstance(pruning, str) or not pruning):
        raise ConfigError(f"{where}.pruning_metric: expected a metric name, auto or null")
    if isinstance(pruning, str) and pruning.lower() == "none":
        pruning = None
    pruning_direction = spec.get("pruning_direction")
    if pruning_direction is not None:
        pruning_direction = _direction(pruning_direction, f"{where}.pruning_direction")
    elif pruning == metric:
        pruning_direction = direction
    return Criterion(metric, direction, source, pruning, pruning_direction)


def _from_report(
    report_type: str, factor: str, freq: Any, where: str
) -> tuple[str, CriterionSource]:
    if report_type == "model":
        return factor, "model"
    if report_type in ("signal", "sig_analysis", "ic"):
        if factor not in SIGNAL_METRICS:
            raise ConfigError(
                f"{where}.report_factor: {factor!r} is not a signal metric; expected one of "
                f"{list(SIGNAL_METRICS)}"
            )
        return factor, "signal"
    if report_type in _PORTFOLIO_TYPES:
        if factor not in _PORTFOLIO_FACTORS:
            raise ConfigError(
                f"{where}.report_factor: {factor!r} is not a risk metric; expected one of "
                f"{list(_PORTFOLIO_FACTORS)}"
            )
        return f"{freq or '1day'}.{report_type}.{factor}", "portfolio"
    raise ConfigError(
        f"{where}.report_type: unknown {report_type!r}; expected model, signal, "
        f"{', '.join(_PORTFOLIO_TYPES)} (or give 'metric' directly)"
    )


@dataclass(frozen=True)
class TunerSpec:
    """One tuner of the pipeline: its space, budget, sampler and pruner."""

    name: str
    n_trials: int
    space: Mapping[str, ParamSpace]
    sampler: str = "tpe"
    sampler_kwargs: Mapping[str, Any] = field(default_factory=dict)
    pruner: str = "median"
    pruner_kwargs: Mapping[str, Any] = field(default_factory=dict)
    inherit_best: bool = True


def _component(spec: Any, allowed: tuple[str, ...], default: str, where: str) -> tuple[str, dict]:
    if spec is None:
        return default, {}
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ConfigError(f"{where}: expected a name or {{type: ..., ...}}; got {spec!r}")
    kind = str(spec["type"]).lower().replace("-", "").replace("_", "")
    aliases = {"cmaes": "cmaes", "tpe": "tpe", "random": "random", "grid": "grid"}
    aliases.update({"median": "median", "hyperband": "hyperband", "none": "none", "nop": "none"})
    kind = aliases.get(kind, kind)
    if kind not in allowed:
        raise ConfigError(
            f"{where}: unknown type {spec['type']!r}; expected one of {list(allowed)}"
        )
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    return kind, kwargs


def parse_tuner(spec: Any, index: int, where: str) -> TunerSpec:
    """Validate one entry of ``tuner_pipeline``."""
    here = f"{where}[{index}]"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{here}: expected a mapping; got {spec!r}")
    known = {
        "name",
        "n_trials",
        "max_evals",
        "sampler",
        "pruner",
        "space",
        "spaces",
        "inherit_best",
    }
    unknown = set(spec) - known
    if unknown:
        raise ConfigError(f"{here}: unknown key(s) {sorted(unknown)}; expected {sorted(known)}")
    name = str(spec.get("name", f"tuner{index}"))
    if not name or "/" in name:
        raise ConfigError(f"{here}.name: expected a non-empty name without '/'; got {name!r}")
    if "n_trials" in spec and "max_evals" in spec:
        raise ConfigError(f"{here}: give either 'n_trials' or Qlib's 'max_evals', not both")
    n_trials = spec.get("n_trials", spec.get("max_evals", 10))
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError(f"{here}.n_trials: expected an integer >= 1; got {n_trials!r}")
    space: dict[str, ParamSpace] = {}
    presets = spec.get("spaces") or []
    if isinstance(presets, str):
        presets = [presets]
    if not isinstance(presets, list):
        raise ConfigError(f"{here}.spaces: expected a list of ready-made space names")
    for preset in presets:
        space.update(preset_space(str(preset), f"{here}.spaces"))
    space.update(parse_space(spec.get("space"), f"{here}.space"))
    if not space:
        raise ConfigError(f"{here}: the tuner has no 'space' (nor ready-made 'spaces') to search")
    sampler, sampler_kwargs = _component(spec.get("sampler"), SAMPLERS, "tpe", f"{here}.sampler")
    pruner, pruner_kwargs = _component(spec.get("pruner"), PRUNERS, "median", f"{here}.pruner")
    inherit = spec.get("inherit_best", True)
    if not isinstance(inherit, bool):
        raise ConfigError(f"{here}.inherit_best: expected true or false; got {inherit!r}")
    if sampler == "grid":
        for param in space.values():
            param.grid()  # raises for continuous floats
    return TunerSpec(name, n_trials, space, sampler, sampler_kwargs, pruner, pruner_kwargs, inherit)


@dataclass(frozen=True)
class TuneConfig:
    """A validated TUNE.yaml."""

    source: str
    workflow: dict[str, Any]
    experiment_name: str
    output_dir: Path
    study_name: str
    storage: str | None
    criterion: Criterion
    tuners: tuple[TunerSpec, ...]
    trial_records: Literal["all", "needed"] = "all"
    heartbeat_interval: int = 10
    grace_period: int | None = None
    retry_stale: int = 1
    max_consecutive_failures: int | None = 10

    def with_n_trials(self, n_trials: int) -> TuneConfig:
        """A copy in which every tuner has ``n_trials`` trials."""
        if n_trials < 1:
            raise ConfigError(f"--n-trials must be >= 1; got {n_trials}")
        return replace(self, tuners=tuple(replace(t, n_trials=n_trials) for t in self.tuners))

    @property
    def settings(self) -> dict[str, Any]:
        """The workflow's ``qlib_init``/``init`` settings, validated."""
        return validate_workflow(self.workflow, self.source).settings


def _int_option(spec: Mapping[str, Any], key: str, default: Any, where: str) -> Any:
    value = spec.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}.{key}: expected an integer >= 0; got {value!r}")
    return value


def parse_tune_config(
    data: Mapping[str, Any], source: str = "<tune>", base_dir: Path | None = None
) -> TuneConfig:
    """Validate a TUNE mapping (base configs already merged) into a :class:`TuneConfig`."""
    data = dict(data)
    if "tuner_pipeline" not in data:
        raise ConfigError(f"{source}: 'tuner_pipeline' is missing; it lists the tuners to run")
    workflow = {k: v for k, v in data.items() if k not in TUNE_KEYS}
    inline = data.get("workflow")
    if inline is not None:
        if not isinstance(inline, Mapping):
            raise ConfigError(f"{source}: 'workflow' must be a workflow mapping")
        workflow = deep_merge(workflow, inline)
    if "task" not in workflow:
        raise ConfigError(
            f"{source}: no base workflow: set BASE_CONFIG_PATH to a workflow file, or give "
            "the workflow inline under 'workflow:'"
        )
    workflow = unshare(workflow)
    validate_workflow(workflow, f"{source} (workflow)")

    experiment = data.get("experiment") or {}
    if not isinstance(experiment, Mapping):
        raise ConfigError(f"{source}: 'experiment' must be a mapping")
    unknown = set(experiment) - {"name", "output_dir", "dir", "tuner_class"}
    if unknown:
        raise ConfigError(f"{source}: experiment: unknown key(s) {sorted(unknown)}")
    base_name = workflow.get("experiment_name") or "workflow"
    experiment_name = str(experiment.get("name") or f"{base_name}_tune")

    study = data.get("study") or {}
    if not isinstance(study, Mapping):
        raise ConfigError(f"{source}: 'study' must be a mapping")
    known_study = {
        "name",
        "storage",
        "heartbeat_interval",
        "grace_period",
        "retry_stale",
        "max_consecutive_failures",
    }
    unknown = set(study) - known_study
    if unknown:
        raise ConfigError(
            f"{source}: study: unknown key(s) {sorted(unknown)}; expected {sorted(known_study)}"
        )
    study_name = str(study.get("name") or experiment_name)
    heartbeat = _int_option(study, "heartbeat_interval", 10, f"{source}: study")
    if heartbeat == 0:
        raise ConfigError(f"{source}: study.heartbeat_interval must be >= 1 second")
    grace = _int_option(study, "grace_period", None, f"{source}: study")
    if grace is not None and grace <= (heartbeat or 0):
        raise ConfigError(
            f"{source}: study.grace_period ({grace}s) must exceed heartbeat_interval ({heartbeat}s)"
        )
    output = experiment.get("output_dir", experiment.get("dir"))
    root = base_dir or Path.cwd()
    output_dir = (
        (root / str(output)).resolve()
        if output
        else Path.cwd() / RUNS_DIR_NAME / "tune" / study_name
    )

    trial_records = data.get("trial_records", "all")
    if trial_records not in ("all", "needed"):
        raise ConfigError(
            f"{source}: trial_records must be 'all' or 'needed'; got {trial_records!r}"
        )

    pipeline = data["tuner_pipeline"]
    if not isinstance(pipeline, list) or not pipeline:
        raise ConfigError(f"{source}: 'tuner_pipeline' must be a non-empty list of tuners")
    tuners = tuple(parse_tuner(t, i, f"{source}: tuner_pipeline") for i, t in enumerate(pipeline))
    names = [t.name for t in tuners]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: tuner names must be unique; got {names}")
    for i, tuner in enumerate(tuners):
        validate_space_paths(workflow, tuner.space, f"{source}: tuner_pipeline[{i}].space")

    criterion = parse_criterion(
        data.get("optimization_criteria"), f"{source}: optimization_criteria"
    )
    check_records(workflow, criterion, source)
    if trial_records == "needed":
        _check_needed_records(workflow, criterion, tuners, source)
    return TuneConfig(
        source=source,
        workflow=workflow,
        experiment_name=experiment_name,
        output_dir=output_dir,
        study_name=study_name,
        storage=study.get("storage"),
        criterion=criterion,
        tuners=tuners,
        trial_records=trial_records,
        heartbeat_interval=heartbeat,
        grace_period=grace,
        retry_stale=_int_option(study, "retry_stale", 1, f"{source}: study"),
        max_consecutive_failures=_int_option(
            study, "max_consecutive_failures", 10, f"{source}: study"
        ),
    )


def load_tune_config(path: str | Path) -> TuneConfig:
    """Load and validate a TUNE.yaml (``BASE_CONFIG_PATH`` merged; child keys win)."""
    file = Path(path)
    return parse_tune_config(load_config_file(file), str(file), file.resolve().parent)


# ----- records a criterion needs ---------------------------------------------------------------


def _record_names(workflow: Mapping[str, Any]) -> list[str]:
    records = get_path(workflow, "task").get("record") or []
    if isinstance(records, str | Mapping):
        records = [records]
    names = []
    for record in records:
        name = record.get("class") if isinstance(record, Mapping) else record
        names.append(str(name).replace(":", ".").rsplit(".", 1)[-1])
    return names


def check_records(workflow: Mapping[str, Any], criterion: Criterion, source: str) -> None:
    """Fail early when the criterion needs a record the workflow cannot add by itself."""
    names = _record_names(workflow)
    if criterion.source == "portfolio" and "PortAnaRecord" not in names:
        raise ConfigError(
            f"{source}: the criterion {criterion.metric!r} comes from PortAnaRecord, which the "
            "workflow's task.record does not list; add it with its strategy and backtest config"
        )
    if criterion.source == "signal" and criterion.metric.startswith("Long-"):
        for record in get_path(workflow, "task").get("record") or []:
            is_sig_ana = isinstance(record, Mapping) and str(record.get("class", "")).endswith(
                "SigAnaRecord"
            )
            if is_sig_ana and not (record.get("kwargs") or {}).get("ana_long_short"):
                raise ConfigError(
                    f"{source}: the criterion {criterion.metric!r} needs SigAnaRecord with "
                    "ana_long_short: true"
                )


def _check_needed_records(
    workflow: Mapping[str, Any], criterion: Criterion, tuners: tuple[TunerSpec, ...], source: str
) -> None:
    """With ``trial_records: needed``, a space must not tune a record that trials leave out."""
    kept = {_class_name(r) for r in trial_task(workflow, criterion, "needed")["record"]}
    for tuner in tuners:
        for path in tuner.space:
            parts = path.split(".")
            if len(parts) < 3 or parts[1] != "record":
                continue
            name = _class_name(get_path(workflow, ".".join(parts[:3])))
            if name not in kept:
                raise ConfigError(
                    f"{source}: tuner {tuner.name!r} searches {path!r}, but with "
                    f"trial_records: needed the trials leave {name} out (the criterion "
                    f"{criterion.metric!r} does not need it); use trial_records: all or a "
                    "criterion that needs that record"
                )


def _class_name(record: Any) -> str:
    name = record.get("class") if isinstance(record, Mapping) else record
    return str(name).replace(":", ".").rsplit(".", 1)[-1]


_SIGNAL_RECORD = {
    "class": "SignalRecord",
    "module_path": "alphalab.workflow",
    "kwargs": {"model": "<MODEL>", "dataset": "<DATASET>"},
}


def trial_task(workflow: Mapping[str, Any], criterion: Criterion, records: str) -> dict[str, Any]:
    """The task a trial runs: the workflow's, with the records the criterion needs added.

    With ``records == "needed"`` the records the criterion does not need are left out.
    """
    task = copy.deepcopy(dict(workflow["task"]))
    current = task.get("record") or []
    if isinstance(current, str | Mapping):
        current = [current]
    names = _record_names(workflow)
    needed = {
        "model": set(),
        "signal": {"SignalRecord", "SigAnaRecord"},
        "portfolio": {"SignalRecord", "PortAnaRecord"},
        "other": set(names),
    }[criterion.source]
    kept = (
        list(current)
        if records == "all"
        else [r for r, n in zip(current, names, strict=True) if n in needed]
    )
    kept_names = [n for n in names if records == "all" or n in needed]
    if criterion.source == "signal":
        if "SignalRecord" not in kept_names:
            kept.insert(0, copy.deepcopy(_SIGNAL_RECORD))
        if "SigAnaRecord" not in kept_names:
            kwargs = {"ana_long_short": criterion.metric.startswith("Long-")}
            kept.append(
                {"class": "SigAnaRecord", "module_path": "alphalab.workflow", "kwargs": kwargs}
            )
    task["record"] = kept
    return task
