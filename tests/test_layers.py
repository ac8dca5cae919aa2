"""Imports point down the layers: a lower layer never imports an upper one."""

from __future__ import annotations

import ast
from pathlib import Path

import alphalab

PACKAGE = Path(alphalab.__file__).parent

# Each layer may import itself and the layers listed after it.
ORDER = ["cli", "tune", "tasks", "workflow", "tracking", "evaluate", "model", "data", "config"]
SIDEWAYS = {("evaluate", "model"), ("model", "evaluate")}  # side by side: neither imports the other


def _imports(file: Path) -> set[str]:
    tree = ast.parse(file.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {n for n in names if n.startswith("alphalab.")}


def test_layers_import_downwards_only() -> None:
    violations = []
    for file in PACKAGE.rglob("*.py"):
        parts = file.relative_to(PACKAGE).parts
        layer = parts[0] if len(parts) > 1 else None
        if layer not in ORDER:
            continue
        allowed_below = ORDER[ORDER.index(layer) :]
        for name in _imports(file):
            target = name.split(".")[1]
            if target not in ORDER:
                continue  # root modules: exceptions, logging, version, _imports, testing
            if target not in allowed_below or (layer, target) in SIDEWAYS:
                violations.append(f"{file.relative_to(PACKAGE)} imports {name}")
    assert not violations, "\n".join(violations)


def test_import_alphalab_is_light() -> None:
    import subprocess
    import sys

    heavy = ("mlflow", "polars", "torch", "lightgbm", "pandas", "sqlalchemy")
    code = f"import sys, alphalab; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
