"""The config-driven workflow behind ``alphalab run`` (Qlib's ``qrun``)."""

from __future__ import annotations

import copy
import inspect
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from alphalab.config import (
    Settings,
    WorkflowConfig,
    get_callable_kwargs,
    init,
    load_config_file,
    parse_yaml,
    validate_workflow,
)
from alphalab.exceptions import ConfigError
from alphalab.logging import get_logger
from alphalab.tracking import R, Recorder
from alphalab.workflow._task_train import BuiltTask, log_task_info, resolve_task, run_task

logger = get_logger(__name__)

#: The metrics a run summary and a comparison table show, in order.
SUMMARY_METRICS = (
    "IC",
    "ICIR",
    "Rank IC",
    "Rank ICIR",
    "1day.excess_return_without_cost.annualized_return",
    "1day.excess_return_without_cost.information_ratio",
    "1day.excess_return_without_cost.max_drawdown",
    "1day.excess_return_with_cost.annualized_return",
    "1day.excess_return_with_cost.information_ratio",
    "1day.excess_return_with_cost.max_drawdown",
)


@dataclass(frozen=True)
class RunSummary:
    """What one workflow run produced, for the CLI summary and comparisons."""

    workflow: str
    run_id: str
    run_name: str
    experiment_name: str
    status: str
    metrics: Mapping[str, float]
    phases: Mapping[str, float]
    artifact_uri: str
    report: str | None
    seed: int | None = None
    children: tuple[RunSummary, ...] = field(default_factory=tuple)


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """Parse ``key.path=value`` strings; values are YAML (``0.05``, ``[a, b]``, ``true``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key.path=value; got {pair!r}")
        out[key.strip()] = parse_yaml(text, f"--set {key.strip()}") if text else ""
    return out


def apply_overrides(config: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``config`` with each dotted key set (list items by index)."""
    result = copy.deepcopy(config)
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node: Any = result
        for depth, part in enumerate(parts[:-1]):
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                node = node[_index(part, node, where)]
            elif isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                raise ConfigError(f"--set {dotted}: {where} is a value, not a mapping")
        last = parts[-1]
        if isinstance(node, list):
            node[_index(last, node, dotted)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ConfigError(f"--set {dotted}: cannot set a key inside a value")
    return result


def _index(part: str, items: list[Any], where: str) -> int:
    if not part.lstrip("-").isdigit() or not -len(items) <= int(part) < len(items):
        raise ConfigError(f"--set: {where} needs a list index below {len(items)}; got {part!r}")
    return int(part)


def _extend_sys_path(config: WorkflowConfig, base: Path) -> None:
    if config.sys is None:
        return
    for folder in [*config.sys.path, *(str(base / p) for p in config.sys.rel_path)]:
        resolved = str(Path(folder).expanduser().resolve())
        if resolved not in sys.path:
            sys.path.append(resolved)


@dataclass(frozen=True)
class PreparedWorkflow:
    """A loaded, overridden and validated workflow, ready to run."""

    path: Path
    raw: dict[str, Any]
    config: WorkflowConfig
    overrides: Mapping[str, Any]
    settings: Settings


def prepare_workflow(
    path: str | Path, overrides: Mapping[str, Any] | None = None, uri: str | None = None
) -> PreparedWorkflow:
    """Load a workflow file, apply overrides, validate it, and initialise settings from it."""
    file = Path(path)
    raw = apply_overrides(load_config_file(file), overrides or {})
    config = validate_workflow(raw, str(file))
    resolve_task(raw["task"])  # dotted references must resolve before any work
    settings_values = dict(config.settings)
    if uri is not None:
        settings_values["tracking_uri"] = uri
    settings = init(**settings_values)
    _extend_sys_path(config, file.resolve().parent)
    return PreparedWorkflow(file, raw, config, dict(overrides or {}), settings)


def _with_seed(task: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The task with the model's ``seed`` set, when the model takes one."""
    seeded = copy.deepcopy(dict(task))
    model = seeded["model"]
    factory, _ = get_callable_kwargs(model, "alphalab.model")
    parameters = inspect.signature(factory).parameters
    takes_seed = "seed" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )
    if not takes_seed:
        logger.warning("%s takes no seed; its seeded runs repeat the same fit", factory.__name__)
    elif isinstance(model, dict):
        model["kwargs"] = {**(model.get("kwargs") or {}), "seed": seed}
    return seeded


def _summary(
    prepared: PreparedWorkflow,
    recorder: Recorder,
    phases: Mapping[str, float],
    seed: int | None,
    children: tuple[RunSummary, ...] = (),
) -> RunSummary:
    metrics = recorder.list_metrics()
    report = None
    if "report/report.html" in recorder.list_artifacts("report"):
        report = f"{recorder.get_local_dir()}/report/report.html"
    return RunSummary(
        workflow=str(prepared.path),
        run_id=recorder.id,
        run_name=recorder.name,
        experiment_name=R.get_exp(experiment_id=recorder.experiment_id).name,
        status=recorder.status.value,
        metrics={k: metrics[k] for k in SUMMARY_METRICS if k in metrics},
        phases=dict(phases),
        artifact_uri=recorder.get_local_dir(),
        report=report,
        seed=seed,
        children=children,
    )


def _run_one(
    prepared: PreparedWorkflow,
    experiment_name: str,
    seed: int | None,
    nested: bool,
    on_phase: Callable[[str], None] | None,
) -> RunSummary:
    task = prepared.raw["task"] if seed is None else _with_seed(prepared.raw["task"], seed)
    run_name = prepared.path.stem if seed is None else f"{prepared.path.stem}-seed{seed}"
    started = time.perf_counter()
    built = BuiltTask(task, load_in_background=True)  # features compute while the run opens
    with R.start(experiment_name=experiment_name, recorder_name=run_name, nested=nested):
        recorder = R.get_recorder()
        log_task_info(recorder, task)
        recorder.save_objects(config=prepared.raw)
        recorder.log_artifact(prepared.path, "workflow")
        if prepared.overrides:
            recorder.set_tags(overrides=yaml.safe_dump(dict(prepared.overrides)).strip())
        if seed is not None:
            recorder.set_tags(seed=str(seed))
        outcome = run_task(built, recorder, on_phase=on_phase)
        phases = {**outcome.phases, "total": time.perf_counter() - started}
    return _summary(
        prepared,
        R.get_recorder(recorder_id=recorder.id, experiment_name=experiment_name),
        phases,
        seed,
    )


def run_workflow(
    path: str | Path,
    *,
    experiment_name: str | None = None,
    uri: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    seeds: int = 1,
    on_phase: Callable[[str], None] | None = None,
) -> RunSummary:
    """Run one workflow file end to end and return its summary.

    With ``seeds > 1`` a parent run holds one child run per seed (seeds 0..n-1 set as the
    model's ``seed``); the parent's metrics are the children's means.
    """
    prepared = prepare_workflow(path, overrides, uri)
    name = experiment_name or prepared.config.experiment_name or prepared.settings.experiment_name
    if seeds <= 1:
        return _run_one(prepared, name, None, False, on_phase)
    started = time.perf_counter()
    with R.start(experiment_name=name, recorder_name=prepared.path.stem):
        parent = R.get_recorder()
        parent.save_objects(config=prepared.raw)
        parent.set_tags(seeds=str(seeds))
        children = tuple(_run_one(prepared, name, seed, True, on_phase) for seed in range(seeds))
        means = compare_metrics([c.metrics for c in children]).loc[:, "mean"].dropna()
        parent.log_metrics(step=None, **{str(k): float(v) for k, v in means.items()})
    summary = _summary(
        prepared,
        R.get_recorder(recorder_id=parent.id, experiment_name=name),
        {"total": time.perf_counter() - started},
        None,
        children,
    )
    return summary


def compare_metrics(runs: Sequence[Mapping[str, float]]) -> pd.DataFrame:
    """Mean and sample std of the summary metrics over runs (e.g. seeds of one workflow)."""
    frame = pd.DataFrame([dict(m) for m in runs], columns=list(SUMMARY_METRICS))
    return pd.DataFrame(
        {"mean": frame.mean(), "std": frame.std(ddof=1) if len(frame) > 1 else math.nan}
    )
