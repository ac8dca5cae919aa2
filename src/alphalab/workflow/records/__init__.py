"""Record templates: SignalRecord, SigAnaRecord, PortAnaRecord (Qlib's names and artifacts)."""

from alphalab.workflow.records._base import RecordTemp
from alphalab.workflow.records._portfolio import PortAnaRecord
from alphalab.workflow.records._report import write_run_report
from alphalab.workflow.records._signal import SigAnaRecord, SignalRecord, raw_label

__all__ = [
    "PortAnaRecord",
    "RecordTemp",
    "SigAnaRecord",
    "SignalRecord",
    "raw_label",
    "write_run_report",
]
