"""Placeholders in configs: ``<MODEL>``-style names and ``<dotted.self.reference>``s."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from alphalab.exceptions import ConfigError

_PLACEHOLDER = re.compile(r"^<([A-Za-z_][A-Za-z0-9_.\-]*)>$")


def placeholder_name(value: Any) -> str | None:
    """Return ``NAME`` if ``value`` is exactly the string ``<NAME>``, else None."""
    if isinstance(value, str):
        match = _PLACEHOLDER.match(value)
        if match:
            return match.group(1)
    return None


def _lookup_dotted(root: Any, dotted: str) -> tuple[bool, Any]:
    node = root
    for part in dotted.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list | tuple) and part.lstrip("-").isdigit():
            index = int(part)
            if not -len(node) <= index < len(node):
                return False, None
            node = node[index]
        else:
            return False, None
    return True, node


def fill_placeholders(
    config: Any,
    mapping: Mapping[str, Any] | None = None,
    *,
    root: Any = None,
    allow_unresolved: Collection[str] = (),
    path: str = "",
) -> Any:
    """Return a copy of ``config`` with placeholders replaced.

    ``<NAME>`` is looked up in ``mapping`` (keys may be written ``"<NAME>"`` or ``"NAME"``);
    a dotted ``<a.b.0>`` is looked up in ``root`` (the whole config). Only dicts, lists and
    tuples are copied; every other value, including placeholder values, is kept by reference.

    Raises:
        ConfigError: for a placeholder that nothing resolves, unless its name (with or without
            brackets) is in ``allow_unresolved``, naming its key path.
    """
    names = {k.strip("<>"): v for k, v in (mapping or {}).items()}
    allowed = {a.strip("<>") for a in allow_unresolved}

    def walk(node: Any, where: str) -> Any:
        if isinstance(node, Mapping):
            return {k: walk(v, f"{where}.{k}" if where else str(k)) for k, v in node.items()}
        if isinstance(node, list | tuple):
            items = [walk(v, f"{where}.{i}" if where else str(i)) for i, v in enumerate(node)]
            return items if isinstance(node, list) else tuple(items)
        name = placeholder_name(node)
        if name is None:
            return node
        if name in names:
            return names[name]
        if root is not None and "." in name:
            found, value = _lookup_dotted(root, name)
            if found:
                return walk(value, where)
        if name in allowed:
            return node
        known = ", ".join(f"<{n}>" for n in sorted(names)) or "none"
        raise ConfigError(
            f"Unresolved placeholder {node!r} at {where or '<top level>'}; "
            f"known placeholders: {known}"
            + ("; dotted references are looked up in the config" if root is not None else "")
        )

    return walk(config, path)


def flatten_dict(config: Mapping[str, Any], parent_key: str = "", sep: str = ".") -> dict[str, Any]:
    """Flatten nested mappings to dotted keys (``task.model.kwargs.learning_rate``).

    Lists and other values are kept as leaf values, as Qlib logs them.
    """
    flat: dict[str, Any] = {}
    for key, value in config.items():
        full = f"{parent_key}{sep}{key}" if parent_key else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten_dict(value, full, sep))
        else:
            flat[full] = value
    return flat
