"""YAML loading for workflow files: anchors kept, errors with file/line/column, base configs."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from alphalab.exceptions import ConfigError, NotFoundError

BASE_CONFIG_KEY = "BASE_CONFIG_PATH"


def parse_yaml(text: str, source: str = "<string>") -> Any:
    """Parse YAML text (anchors, aliases and ``<<`` merge keys resolved).

    Raises:
        ConfigError: naming ``source`` with the line and column of a syntax error.
    """
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = e.problem or e.context or "invalid YAML"
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: YAML error: {e}") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping."""
    file = Path(path)
    if not file.is_file():
        raise NotFoundError(f"Config file not found: {file}")
    data = parse_yaml(file.read_text(encoding="utf-8"), str(file))
    if data is None:
        raise ConfigError(f"{file}: the file is empty; expected a mapping of settings")
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the top level must be a mapping; got {type(data).__name__}")
    return data


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``: mappings merge key by key, others replace."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Load a workflow file, applying ``BASE_CONFIG_PATH`` inheritance (child keys win).

    The base path is relative to the file naming it; bases may chain, but not in a cycle.
    """
    return _load_with_bases(Path(path).resolve(), ())


def _load_with_bases(file: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    if file in chain:
        cycle = " -> ".join(str(p) for p in (*chain, file))
        raise ConfigError(f"{BASE_CONFIG_KEY} forms a cycle: {cycle}")
    data = load_yaml(file)
    base_ref = data.pop(BASE_CONFIG_KEY, None)
    if base_ref is None:
        return data
    if not isinstance(base_ref, str):
        raise ConfigError(f"{file}: {BASE_CONFIG_KEY} must be a path string; got {base_ref!r}")
    base_file = (file.parent / base_ref).expanduser().resolve()
    if not base_file.is_file():
        raise NotFoundError(
            f"{file}: {BASE_CONFIG_KEY} {base_ref!r} not found (looked at {base_file})"
        )
    return deep_merge(_load_with_bases(base_file, (*chain, file)), data)
