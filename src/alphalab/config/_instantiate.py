"""Build objects from configuration: ``{"class", "module_path", "kwargs"}`` and friends."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from alphalab.config._aliases import QLIB_CLASS_ALIASES, QLIB_MODULE_ALIASES, is_qlib_module
from alphalab.config._placeholders import fill_placeholders
from alphalab.exceptions import ConfigError

_COMPONENT_KEYS = frozenset({"class", "module_path", "kwargs"})


def _load_module_from_file(file: Path) -> ModuleType:
    """Import a ``.py`` file as a module (once per resolved path)."""
    resolved = file.expanduser().resolve()
    if not resolved.is_file():
        raise ConfigError(f"module_path {str(file)!r} is not an existing .py file")
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    name = f"alphalab_user_{resolved.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ConfigError(f"Cannot import {str(resolved)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        raise
    return module


def _import_module(module_path: str) -> ModuleType:
    if module_path.endswith(".py") or "/" in module_path or "\\" in module_path:
        return _load_module_from_file(Path(module_path))
    try:
        return importlib.import_module(module_path)
    except ModuleNotFoundError as e:
        if e.name is not None and module_path.startswith(e.name):
            raise ConfigError(
                f"module_path {module_path!r} cannot be imported: no module named {e.name!r}"
            ) from None
        raise


def resolve_class(name: str, module_path: str | None = None) -> Any:
    """Find the object ``name`` in ``module_path``, translating Qlib's module paths.

    Raises:
        ConfigError: when the module cannot be imported, has no such name, or is a Qlib module
            with no alphalab equivalent.
    """
    if module_path is None:
        raise ConfigError(
            f"Cannot locate class {name!r}: no module_path given and no default module; "
            "write it as {'class': ..., 'module_path': ...} or 'package.module:Class'"
        )
    target_module, target_name = module_path, name
    if is_qlib_module(module_path):
        if module_path not in QLIB_MODULE_ALIASES:
            raise ConfigError(
                f"The Qlib module {module_path!r} (class {name!r}) has no alphalab equivalent; "
                f"supported Qlib modules: {', '.join(sorted(QLIB_MODULE_ALIASES))}"
            )
        target_module = QLIB_MODULE_ALIASES[module_path]
        target_name = QLIB_CLASS_ALIASES.get((module_path, name), name)
    module = _import_module(target_module)
    try:
        return getattr(module, target_name)
    except AttributeError:
        if target_module != module_path:
            raise ConfigError(
                f"The Qlib class {module_path}.{name} has no alphalab equivalent "
                f"(looked for {target_name!r} in {target_module!r})"
            ) from None
        public = sorted(n for n in getattr(module, "__all__", ()) if n[:1].isupper())
        hint = f"; it provides: {', '.join(public)}" if public else ""
        raise ConfigError(f"Module {module_path!r} has no class {name!r}{hint}") from None


def _split_string(spec: str, default_module: str | None) -> tuple[str, str | None]:
    if ":" in spec:
        module, _, name = spec.rpartition(":")
        return name, module
    module, _, name = spec.rpartition(".")
    return name, (module or default_module)


def get_callable_kwargs(
    config: Any, default_module: str | ModuleType | None = None
) -> tuple[Callable[..., Any], dict[str, Any]]:
    """Return ``(callable, kwargs)`` described by ``config`` (a mapping, string or class)."""
    default = default_module.__name__ if isinstance(default_module, ModuleType) else default_module
    if isinstance(config, Mapping):
        unknown = set(config) - _COMPONENT_KEYS
        if unknown:
            raise ConfigError(
                f"Unknown key(s) {sorted(unknown)} in component config; "
                "expected 'class', 'module_path' and 'kwargs'"
            )
        if "class" not in config:
            raise ConfigError(f"Component config has no 'class' key: {dict(config)!r}")
        name = config["class"]
        if isinstance(name, type):
            return name, dict(config.get("kwargs") or {})
        if not isinstance(name, str) or not name:
            raise ConfigError(f"'class' must be a class name string; got {name!r}")
        module_path = config.get("module_path") or default
        if isinstance(module_path, ModuleType):
            module_path = module_path.__name__
        kwargs = config.get("kwargs") or {}
        if not isinstance(kwargs, Mapping):
            raise ConfigError(f"'kwargs' of {name!r} must be a mapping; got {kwargs!r}")
        if ":" in name or "." in name:
            name, module_path = _split_string(name, module_path)
        return resolve_class(name, module_path), dict(kwargs)
    if isinstance(config, str):
        name, module_path = _split_string(config, default)
        return resolve_class(name, module_path), {}
    if isinstance(config, type):
        return config, {}
    raise ConfigError(
        f"Cannot build an object from {config!r}: expected a component mapping, "
        "a 'module:Class' string or a class"
    )


def _check_signature(cls: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    """Reject keyword arguments the constructor does not take, listing the ones it does."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return
    params = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    accepted = [
        p.name
        for p in params
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    name = getattr(cls, "__qualname__", repr(cls))
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise ConfigError(
            f"{name} got unknown parameter(s) {unknown}; it accepts: {', '.join(accepted)}"
        )
    missing = [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        and p.name not in kwargs
    ]
    if missing:
        raise ConfigError(f"{name} is missing required parameter(s): {', '.join(missing)}")


def init_instance_by_config(
    config: Any,
    default_module: str | ModuleType | None = None,
    accept_types: type | tuple[type, ...] = (),
    *,
    placeholders: Mapping[str, Any] | None = None,
    allow_unresolved: Collection[str] = (),
    **override: Any,
) -> Any:
    """Build an object from its configuration, as Qlib's function of the same name.

    ``config`` may be a mapping ``{"class", "module_path", "kwargs"}``, a
    ``"module.path:Class"`` / ``"module.path.Class"`` string, a class (instantiated with
    ``override``), or an object, which is returned unchanged (also any ``accept_types``
    instance). ``module_path`` may be a path to a ``.py`` file; Qlib module paths are
    translated. Placeholders in the kwargs are replaced from ``placeholders``; an unresolved
    one is an error unless listed in ``allow_unresolved``. ``override`` wins over kwargs.
    """
    if accept_types and isinstance(config, accept_types):
        return config
    if not isinstance(config, Mapping | str | type):
        return config
    factory, kwargs = get_callable_kwargs(config, default_module)
    kwargs.update(override)
    kwargs = fill_placeholders(
        kwargs, placeholders, allow_unresolved=allow_unresolved, path="kwargs"
    )
    _check_signature(factory, kwargs)
    return factory(**kwargs)
