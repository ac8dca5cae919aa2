from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from alphalab import __version__
from alphalab.cli import app

runner = CliRunner()


def test_version_and_help() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"alphalab {__version__}"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "config" in result.output


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("alphalab")
    done = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"alphalab {__version__}"


def test_config_show_reports_sources(monkeypatch) -> None:
    monkeypatch.setenv("ALPHALAB_EXPERIMENT_NAME", "env-exp")
    result = runner.invoke(app, ["config", "show"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    line = next(r for r in result.output.splitlines() if "experiment_name" in r)
    assert "env-exp" in line and "environment" in line


def test_validate_reports_errors_without_traceback(tmp_path: Path) -> None:
    file = tmp_path / "wf.yaml"
    file.write_text("task:\n  model: {class: Fraction, module_path: fractions}\n")
    result = runner.invoke(app, ["config", "validate", str(file)])
    assert result.exit_code == 1
    assert "Error:" in result.output
    assert "task.dataset: Field required" in result.output
    assert "Traceback" not in result.output


def test_validate_resolves_classes(tmp_path: Path) -> None:
    file = tmp_path / "wf.yaml"
    file.write_text(
        "task:\n"
        "  model: {class: Fraction, module_path: fractions}\n"
        "  dataset: datetime.timedelta\n"
        "  record: [{class: Nope, module_path: fractions}]\n"
    )
    result = runner.invoke(app, ["config", "validate", str(file)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "Module 'fractions' has no class 'Nope'" in result.output

    file.write_text(
        file.read_text().replace("record: [{class: Nope, module_path: fractions}]\n", "")
    )
    result = runner.invoke(app, ["config", "validate", str(file)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "fractions.Fraction" in result.output


def test_debug_shows_the_exception(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--debug", "config", "validate", str(tmp_path / "none.yaml")])
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "NotFoundError"
