"""Pure helpers of the benchmark harness: medians, measurements, tables, the results' JSON.

Standard library only, so that ``run.py``, the peer environment's children and the unit test
can all import it. ``benchmarks/`` is not a package: import this file by path.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: Version of the JSON layout written under ``benchmarks/results/``.
SCHEMA_VERSION = 1

#: The suites, in the order they run.
SUITES = ("tracking", "data", "features", "backtest", "workflow", "tasks", "tune")


def median(values: Sequence[float | None]) -> float | None:
    """Median of the values that are not None or NaN; None when there are none."""
    kept = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return statistics.median(kept) if kept else None


def ratio(alphalab: float | None, peer: float | None) -> float | None:
    """How many times faster alphalab is (peer time / alphalab time); None when unknown."""
    if alphalab is None or peer is None or alphalab <= 0:
        return None
    return peer / alphalab


def summarise(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Medians of one side's repeated measurements (each a dict with seconds and peak_mb)."""
    return {
        "seconds": median([s.get("seconds") for s in samples]),
        "peak_mb": median([s.get("peak_mb") for s in samples]),
        "samples": [dict(s) for s in samples],
    }


def step_entry(
    name: str,
    alphalab: Sequence[Mapping[str, Any]],
    peer: Sequence[Mapping[str, Any]],
    agreement: Mapping[str, Any] | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One row of a suite: both sides' medians, the ratio and the agreement of results."""
    ours, theirs = summarise(alphalab), summarise(peer)
    return {
        "step": name,
        "alphalab": ours,
        "peer": theirs,
        "ratio": ratio(ours["seconds"], theirs["seconds"]),
        "agreement": dict(agreement or {}),
        "note": note,
    }


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def format_agreement(agreement: Mapping[str, Any]) -> str:
    """``key value`` pairs in one cell; floats with 4 significant digits."""
    parts = []
    for key, value in agreement.items():
        if isinstance(value, float):
            parts.append(f"{key} {value:.4g}")
        else:
            parts.append(f"{key} {value}")
    return "; ".join(parts)


TABLE_HEADER = (
    "step",
    "alphalab s",
    "peer s",
    "ratio",
    "alphalab MB",
    "peer MB",
    "agreement",
)


def table_rows(steps: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """The cells of a suite's table, one list per step."""
    rows = []
    for s in steps:
        rows.append(
            [
                str(s["step"]),
                _fmt(s["alphalab"]["seconds"], ".2f"),
                _fmt(s["peer"]["seconds"], ".2f"),
                _fmt(s["ratio"], ".1f", "x"),
                _fmt(s["alphalab"]["peak_mb"], ".0f"),
                _fmt(s["peer"]["peak_mb"], ".0f"),
                format_agreement(s.get("agreement") or {}),
            ]
        )
    return rows


def format_table(steps: Sequence[Mapping[str, Any]], markdown: bool = False) -> str:
    """A plain-text (aligned) or Markdown table of a suite's steps."""
    rows = table_rows(steps)
    if markdown:
        lines = ["| " + " | ".join(TABLE_HEADER) + " |"]
        lines.append("|" + "|".join(["---"] + ["---:"] * 5 + ["---"]) + "|")
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(TABLE_HEADER, *rows, strict=False)]
    lines = []
    for i, row in enumerate([list(TABLE_HEADER), *rows]):
        cells = [
            c.ljust(w) if j in (0, len(row) - 1) else c.rjust(w)
            for j, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def table_notes(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    """A line per step that has a note (e.g. why a row has no peer): ``* step: note``."""
    return [f"* {str(s['step']).strip()}: {s['note']}" for s in steps if s.get("note")]


def growth_table(sizes: Sequence[Mapping[str, Any]]) -> str:
    """One row per (suite, step), one column per market size: alphalab | peer seconds and MB."""
    order: list[tuple[str, str]] = []
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for size in sizes:
        for suite, entry in size["suites"].items():
            for step in entry.get("steps", []):
                key = (suite, str(step["step"]).strip())
                if key not in cells:
                    order.append(key)
                    cells[key] = {}
                a, p = step["alphalab"], step["peer"]
                cells[key][size["label"]] = (
                    f"{_fmt(a['seconds'], '.2f')} | {_fmt(p['seconds'], '.2f')} s, "
                    f"{_fmt(a['peak_mb'], '.0f')} | {_fmt(p['peak_mb'], '.0f')} MB"
                )
    header = ["suite: step", *(str(s["label"]) for s in sizes)]
    rows = [
        [f"{k[0]}: {k[1]}", *(cells[k].get(str(s["label"]), "-") for s in sizes)] for k in order
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    """What the numbers ran on: CPU, cores, memory, OS, Python (no host name)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gb = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    memory_gb = round(int(line.split()[1]) / 2**20, 1)
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def peak_rss_mb() -> float | None:
    """Peak RSS of this process (VmHWM, fresh at exec) or of a child it waited for, in MB.

    Called by a benchmark child just before it exits. The parent's view through ``wait4``
    would not do: a forked child keeps its parent's high-water mark across ``exec``.
    """
    import resource

    peak_kb = 0
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    peak_kb = int(line.split()[1])
    except OSError:
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_kb = max(peak_kb, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return peak_kb / 1024 if peak_kb else None


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (empty where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def results_document(
    *,
    scale: str,
    repeat: int,
    sizes: Sequence[Mapping[str, Any]],
    machine: Mapping[str, Any],
    versions: Mapping[str, str],
    started: str,
    seconds: float,
) -> dict[str, Any]:
    """The JSON written under ``benchmarks/results/``: one entry per market size.

    Each size holds ``suites``: name -> ``{"available": bool, "reason": str, "steps": [...],
    "load_average": {"before": [...], "after": [...]}}`` with steps from :func:`step_entry`.
    """
    return {
        "schema": SCHEMA_VERSION,
        "scale": scale,
        "repeat": repeat,
        "started": started,
        "seconds": seconds,
        "machine": dict(machine),
        "versions": dict(versions),
        "sizes": [dict(s) for s in sizes],
    }


def validate_document(doc: Mapping[str, Any]) -> None:
    """Raise ValueError when ``doc`` does not have the shape of :func:`results_document`."""
    for key in ("schema", "scale", "repeat", "machine", "versions", "sizes"):
        if key not in doc:
            raise ValueError(f"results document lacks {key!r}")
    for size in doc["sizes"]:
        for key in ("instruments", "start", "end", "suites"):
            if key not in size:
                raise ValueError(f"size entry lacks {key!r}")
        for name, suite in size["suites"].items():
            if name not in SUITES:
                raise ValueError(f"unknown suite {name!r}")
            if "available" not in suite or "steps" not in suite:
                raise ValueError(f"suite {name!r} lacks 'available' or 'steps'")
            for step in suite["steps"]:
                for key in ("step", "alphalab", "peer", "ratio", "agreement"):
                    if key not in step:
                        raise ValueError(f"step of suite {name!r} lacks {key!r}")


def match_rate(a: Any, b: Any, rtol: float = 1e-4, atol: float = 1e-5) -> float:
    """Share of cells equal within tolerance (NaN equals NaN) of two numpy arrays."""
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size == 0:
        return float("nan")
    same = np.isclose(a, b, rtol=rtol, atol=atol) | (np.isnan(a) & np.isnan(b))
    return float(same.mean())


def run_step(steps: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> None:
    """Entry point of a step script: ``STEP SPEC.json OUT.json``; writes the step's result."""
    step, spec_path, out_arg = sys.argv[1:4]
    out_path = Path(out_arg).resolve()  # a step may change the working directory
    spec = json.loads(Path(spec_path).read_text())
    result = steps[step](spec)
    result["load_average"] = list(os.getloadavg())
    result["peak_mb"] = peak_rss_mb()
    out_path.write_text(json.dumps(result, default=float))
