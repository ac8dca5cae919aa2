"""The benchmark harness's pure helpers (benchmarks/harness.py); no peer environment needed."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "harness.py"
_spec = importlib.util.spec_from_file_location("bench_harness", _PATH)
assert _spec is not None and _spec.loader is not None
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)


def test_median_skips_missing_values() -> None:
    assert harness.median([3.0, 1.0, 2.0]) == 2.0
    assert harness.median([4.0, None, float("nan"), 1.0]) == 2.5
    assert harness.median([]) is None
    assert harness.median([None]) is None


def test_ratio_is_peer_over_alphalab() -> None:
    assert harness.ratio(2.0, 10.0) == 5.0
    assert harness.ratio(None, 1.0) is None
    assert harness.ratio(0.0, 1.0) is None


def _step(name: str, ours: list[float], theirs: list[float]) -> dict:
    return harness.step_entry(
        name,
        [{"seconds": s, "peak_mb": 100.0} for s in ours],
        [{"seconds": s, "peak_mb": 900.0} for s in theirs],
        {"IC": 0.05123456, "days": "10/10"},
    )


def test_step_entry_takes_medians() -> None:
    step = _step("features", [1.0, 3.0, 2.0], [20.0, 10.0, 30.0])
    assert step["alphalab"]["seconds"] == 2.0
    assert step["peer"]["seconds"] == 20.0
    assert step["ratio"] == 10.0
    assert len(step["alphalab"]["samples"]) == 3


def test_plain_table_is_aligned() -> None:
    text = harness.format_table([_step("features", [2.0], [20.0]), _step("x", [1.0], [None])])
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["step", "alphalab", "s"]
    assert set(lines[1]) <= {"-", " "}
    assert "10.0x" in lines[2]
    assert "IC 0.05123; days 10/10" in lines[2]
    # numbers are right-aligned under their header
    assert lines[0].index("ratio") + len("ratio") == lines[2].index("10.0x") + len("10.0x")
    assert lines[3].split()[2] == "-"  # missing peer time


def test_markdown_table_has_one_row_per_step() -> None:
    text = harness.format_table([_step("a", [1.0], [2.0]), _step("b", [1.0], [4.0])], True)
    lines = text.splitlines()
    assert lines[0].startswith("| step | alphalab s")
    assert len(lines) == 4
    assert all(line.count("|") == 8 for line in lines)


def test_markdown_table_escapes_pipes_in_cells() -> None:
    step = harness.step_entry("a", [{"seconds": 1.0}], [{"seconds": 2.0}], {"max|d|": "1e-6"})
    row = harness.format_table([step], markdown=True).splitlines()[2]
    assert "max\\|d\\|" in row
    assert row.replace("\\|", "").count("|") == 8


def test_results_document_round_trips_through_json() -> None:
    size = {
        "label": "3 stocks",
        "instruments": 3,
        "start": "2020-01-01",
        "end": "2020-12-31",
        "suites": {
            "features": {"available": True, "reason": "", "steps": [_step("a", [1], [2])]},
            "tune": {"available": False, "reason": "alphalab.tune does not exist", "steps": []},
        },
    }
    doc = harness.results_document(
        scale="small",
        repeat=1,
        sizes=[size],
        machine=harness.machine_info(),
        versions={"alphalab": "0"},
        started="2026-01-01 00:00",
        seconds=1.0,
    )
    again = json.loads(json.dumps(doc))
    harness.validate_document(again)
    assert again["schema"] == harness.SCHEMA_VERSION
    assert again["machine"]["cores"] >= 1


def test_validate_document_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match="lacks 'sizes'"):
        harness.validate_document(
            {"schema": 1, "scale": "s", "repeat": 1, "machine": {}, "versions": {}}
        )
    bad = {
        "schema": 1,
        "scale": "s",
        "repeat": 1,
        "machine": {},
        "versions": {},
        "sizes": [{"instruments": 1, "start": "", "end": "", "suites": {"nope": {}}}],
    }
    with pytest.raises(ValueError, match="unknown suite 'nope'"):
        harness.validate_document(bad)


def test_match_rate_counts_nan_pairs_as_equal() -> None:
    a = np.array([[1.0, np.nan], [3.0, 4.0]])
    b = np.array([[1.0 + 1e-9, np.nan], [3.0, 5.0]])
    assert harness.match_rate(a, b) == 0.75
    assert math.isnan(harness.match_rate(np.array([]), np.array([])))


def test_growth_table_has_a_column_per_size() -> None:
    sizes = [
        {"label": f"{n} stocks", "suites": {"features": {"steps": [_step("a", [n], [10 * n])]}}}
        for n in (1, 2, 3)
    ]
    lines = harness.growth_table(sizes).splitlines()
    assert lines[0].split("  ")[0].strip() == "suite: step"
    assert "3 stocks" in lines[0]
    assert lines[2].startswith("features: a")
    assert "3.00 | 30.00 s, 100 | 900 MB" in lines[2]


def test_step_without_a_peer_shows_dashes_and_its_note() -> None:
    alone = harness.step_entry(
        "  via a task pool",
        [{"seconds": 3.0, "peak_mb": 100.0}],
        [],
        {"windows": 4},
        note="alphalab only: the peer's pool needs MongoDB",
    )
    assert alone["peer"]["seconds"] is None and alone["ratio"] is None
    row = harness.format_table([_step("a", [1.0], [2.0]), alone]).splitlines()[3]
    assert row.split()[4:9] == ["3.00", "-", "-", "100", "-"]
    assert "windows 4" in row
    assert harness.table_notes([_step("a", [1.0], [2.0]), alone]) == [
        "* via a task pool: alphalab only: the peer's pool needs MongoDB"
    ]
    markdown = harness.format_table([alone], markdown=True).splitlines()[2]
    assert markdown.replace("\\|", "").count("|") == 8
