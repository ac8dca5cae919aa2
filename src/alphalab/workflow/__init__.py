"""Workflows: record templates, ``task_train`` and the runner behind ``alphalab run``."""

from alphalab.workflow._runner import (
    SUMMARY_METRICS,
    RunSummary,
    apply_overrides,
    compare_metrics,
    parse_overrides,
    prepare_workflow,
    run_workflow,
)
from alphalab.workflow._task_train import TaskOutcome, build_record, run_task, task_train
from alphalab.workflow.records import (
    PortAnaRecord,
    RecordTemp,
    SigAnaRecord,
    SignalRecord,
    raw_label,
    write_run_report,
)

__all__ = [
    "SUMMARY_METRICS",
    "PortAnaRecord",
    "RecordTemp",
    "RunSummary",
    "SigAnaRecord",
    "SignalRecord",
    "TaskOutcome",
    "apply_overrides",
    "build_record",
    "compare_metrics",
    "parse_overrides",
    "prepare_workflow",
    "raw_label",
    "run_task",
    "run_workflow",
    "task_train",
    "write_run_report",
]
