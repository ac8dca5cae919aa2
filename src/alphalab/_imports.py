"""Lazy import of optional dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from alphalab.exceptions import MissingDependencyError


def import_optional(module: str, extra: str, feature: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the pip extra.

    Args:
        module: Dotted module name, e.g. ``"torch"``.
        extra: The alphalab extra that installs it, e.g. ``"torch"``.
        feature: What the caller wanted to do, for the message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        purpose = f" for {feature}" if feature else ""
        raise MissingDependencyError(
            f"The optional dependency {module!r} is needed{purpose} but is not installed; "
            f"install it with: pip install 'alphalab[{extra}]'"
        ) from e
