"""Search spaces: one distribution per dotted key path of a workflow, and ready-made spaces.

A space entry is ``{type: float|int|categorical, low, high, log, step, choices}`` under a key
path such as ``task.model.kwargs.num_leaves``. Path parts walk mappings by key and lists by
index, or pick the list item whose ``class`` equals the part: ``task.record.PortAnaRecord``
is the PortAnaRecord entry of the task's records, wherever it sits in the list.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from alphalab.exceptions import ConfigError

if TYPE_CHECKING:
    import optuna

ParamKind = Literal["float", "int", "categorical"]

_SCALARS = (str, int, float, bool, type(None))
_SPACE_KEYS = {"type", "low", "high", "log", "step", "choices"}


@dataclass(frozen=True)
class ParamSpace:
    """The distribution of one tuned value.

    Attributes:
        path: Dotted key path in the workflow (``task.model.kwargs.learning_rate``).
        kind: ``float``, ``int`` or ``categorical``.
        low: Lower bound (float/int), inclusive.
        high: Upper bound (float/int), inclusive.
        log: Sample on a log scale (float/int; needs ``low > 0``).
        step: Grid step (float/int); None for a continuous float, 1 for an int.
        choices: The candidate values of a categorical parameter. Values that Optuna cannot
            store (lists, mappings) are sampled by index and decoded back.
    """

    path: str
    kind: ParamKind
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    @property
    def by_index(self) -> bool:
        """Whether the categorical is sampled by index (some choice is not a scalar)."""
        return self.kind == "categorical" and not all(isinstance(c, _SCALARS) for c in self.choices)

    def suggest(self, trial: optuna.trial.BaseTrial) -> Any:
        """Sample this parameter in ``trial`` and return the value to put in the workflow."""
        if self.kind == "float":
            assert self.low is not None and self.high is not None  # checked by parse_param
            return trial.suggest_float(
                self.path, float(self.low), float(self.high), log=self.log, step=self.step
            )
        if self.kind == "int":
            assert self.low is not None and self.high is not None
            return trial.suggest_int(
                self.path, int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        if self.by_index:
            index = trial.suggest_categorical(self.path, list(range(len(self.choices))))
            return self.decode(index)
        return trial.suggest_categorical(self.path, list(self.choices))

    def decode(self, stored: Any) -> Any:
        """The workflow value of a value stored by Optuna (an index for non-scalar choices)."""
        if self.by_index:
            return copy.deepcopy(self.choices[int(stored)])
        return stored

    def grid(self) -> list[Any]:
        """Every value of this parameter for the grid sampler, as Optuna stores them."""
        if self.kind == "categorical":
            return list(range(len(self.choices))) if self.by_index else list(self.choices)
        if self.step is None:
            raise ConfigError(
                f"The grid sampler needs a finite set of values, but {self.path!r} is a "
                "continuous float; give it a 'step' or make it categorical"
            )
        assert self.low is not None and self.high is not None
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        values = [self.low + i * self.step for i in range(count)]
        if self.kind == "int":
            return [int(v) for v in values]
        return [round(float(v), 12) for v in values]


def _number(value: Any, name: str, where: str, integer: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{where}: '{name}' must be {kind}; got {value!r}")
    if integer and not float(value).is_integer():
        raise ConfigError(
            f"{where}: '{name}' must be an integer for an int parameter; got {value!r}"
        )
    if not math.isfinite(float(value)):
        raise ConfigError(f"{where}: '{name}' must be finite; got {value!r}")
    return int(value) if integer else float(value)


def parse_param(path: str, spec: Any, where: str) -> ParamSpace:
    """Validate one space entry (``{type: ..., low: ..., ...}``) and build its ParamSpace.

    A bare list is shorthand for ``{type: categorical, choices: [...]}``.

    Raises:
        ConfigError: naming ``where`` (the file and key path) and what was expected.
    """
    if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
        raise ConfigError(f"{where}: a space key must be a dotted key path; got {path!r}")
    if isinstance(spec, list):
        spec = {"type": "categorical", "choices": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"{where}: expected a mapping such as {{type: float, low: 0.01, high: 0.3}} or a "
            f"list of choices; got {spec!r}"
        )
    unknown = set(spec) - _SPACE_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(unknown)}; a space entry accepts "
            f"{sorted(_SPACE_KEYS)}"
        )
    kind = spec.get("type")
    if kind not in ("float", "int", "categorical"):
        raise ConfigError(f"{where}: 'type' must be float, int or categorical; got {kind!r}")
    if kind == "categorical":
        extra = {"low", "high", "log", "step"} & set(spec)
        if extra:
            raise ConfigError(
                f"{where}: a categorical parameter takes only 'choices'; got {sorted(extra)}"
            )
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: 'choices' must be a non-empty list; got {choices!r}")
        return ParamSpace(path, "categorical", choices=tuple(choices))
    if "choices" in spec:
        raise ConfigError(f"{where}: 'choices' belongs to categorical parameters, not {kind}")
    integer = kind == "int"
    for key in ("low", "high"):
        if key not in spec:
            raise ConfigError(f"{where}: a {kind} parameter needs '{key}'")
    low = _number(spec["low"], "low", where, integer)
    high = _number(spec["high"], "high", where, integer)
    if low > high:
        raise ConfigError(f"{where}: 'low' ({low}) must not exceed 'high' ({high})")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: 'log' must be true or false; got {log!r}")
    step = spec.get("step")
    if step is not None:
        step = _number(step, "step", where, integer)
        if step <= 0:
            raise ConfigError(f"{where}: 'step' must be > 0; got {step}")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log-scale parameter needs 'low' > 0; got {low}")
    if log and step is not None and not (integer and step == 1):
        raise ConfigError(f"{where}: 'log' and 'step' cannot be combined; drop one of them")
    return ParamSpace(path, kind, low=low, high=high, log=log, step=step)


def parse_space(spec: Any, where: str) -> dict[str, ParamSpace]:
    """Validate a ``space`` mapping of ``key.path: {type: ...}`` entries."""
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: 'space' must map key paths to distributions; got {spec!r}")
    return {path: parse_param(path, entry, f"{where}.{path}") for path, entry in spec.items()}


# ----- key paths ----------------------------------------------------------------------------------


def _child(node: Any, part: str, walked: str, path: str) -> tuple[Any, Any]:
    """Return (key, child) of ``node`` for one path part, or raise naming what exists."""
    if isinstance(node, Mapping):
        if part not in node:
            keys = ", ".join(str(k) for k in node) or "none"
            raise ConfigError(f"{path!r}: {walked or '<root>'} has no key {part!r} (keys: {keys})")
        return part, node[part]
    if isinstance(node, list):
        if part.lstrip("-").isdigit():
            index = int(part)
            if not -len(node) <= index < len(node):
                raise ConfigError(
                    f"{path!r}: {walked} has {len(node)} item(s); index {index} is out of range"
                )
            return index, node[index]
        matches = [i for i, item in enumerate(node) if _class_name(item) == part]
        if len(matches) != 1:
            names = [_class_name(item) for item in node]
            found = "no" if not matches else f"{len(matches)}"
            raise ConfigError(
                f"{path!r}: {walked} has {found} item(s) of class {part!r} (classes: {names}); "
                "use the item's index instead"
            )
        return matches[0], node[matches[0]]
    raise ConfigError(f"{path!r}: {walked} is a value ({node!r}), not a mapping or list")


def _class_name(item: Any) -> str | None:
    if isinstance(item, Mapping):
        name = item.get("class")
        return str(name).rsplit(".", 1)[-1] if name is not None else None
    if isinstance(item, str):
        return item.replace(":", ".").rsplit(".", 1)[-1]
    return None


def get_path(config: Any, path: str) -> Any:
    """The value at a dotted key path (see the module docstring for the path syntax)."""
    node = config
    parts = path.split(".")
    for depth, part in enumerate(parts):
        _, node = _child(node, part, ".".join(parts[:depth]), path)
    return node


def _parent(config: Any, path: str, create: bool) -> Any:
    """The node holding the last part of ``path``.

    Inside a ``kwargs`` mapping, missing (or null) intermediate mappings are created
    (``task.model.kwargs.pt_model_kwargs.dropout`` works without ``pt_model_kwargs`` in the
    workflow); elsewhere every part but the last must exist, so typos are caught. Without
    ``create``, a parent that would be created is returned as an empty mapping.
    """
    parts = path.split(".")
    node = config
    for depth, part in enumerate(parts[:-1]):
        missing = isinstance(node, Mapping) and node.get(part) is None
        if missing and "kwargs" in parts[:depth]:
            if not create:
                return {}
            node[part] = {}
        _, node = _child(node, part, ".".join(parts[:depth]), path)
    return node


def check_path(config: Any, path: str) -> None:
    """Check that ``path`` can be set: its parent exists; a mapping may gain the last key."""
    parts = path.split(".")
    parent = _parent(config, path, create=False)
    if isinstance(parent, Mapping):
        return
    _child(parent, parts[-1], ".".join(parts[:-1]), path)


def set_paths(config: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``config`` with each dotted key path set to its value."""
    result: dict[str, Any] = unshare(config)
    for path, value in values.items():
        parts = path.split(".")
        parent = _parent(result, path, create=True)
        if isinstance(parent, dict):
            parent[parts[-1]] = copy.deepcopy(value)
        else:
            key, _ = _child(parent, parts[-1], ".".join(parts[:-1]), path)
            parent[key] = copy.deepcopy(value)
    return result


def unshare(value: Any) -> Any:
    """A copy in which no two places share an object (YAML aliases become separate copies).

    So setting one key path never changes another place that an anchor also filled.
    """
    if isinstance(value, Mapping):
        return {k: unshare(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [unshare(v) for v in value]
    return copy.deepcopy(value)


# ----- ready-made spaces -----------------------------------------------------------------------

_MODEL = "task.model.kwargs"
_STRATEGY = "task.record.PortAnaRecord.kwargs.config.strategy.kwargs"

#: Ready-made spaces by name, usable as ``spaces: [lightgbm, topk_dropout]`` in a tuner.
PRESET_SPACES: Mapping[str, Mapping[str, Mapping[str, Any]]] = {
    "lightgbm": {
        f"{_MODEL}.learning_rate": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
        f"{_MODEL}.num_leaves": {"type": "int", "low": 8, "high": 256, "log": True},
        f"{_MODEL}.max_depth": {"type": "int", "low": 3, "high": 10},
        f"{_MODEL}.colsample_bytree": {"type": "float", "low": 0.5, "high": 1.0},
        f"{_MODEL}.subsample": {"type": "float", "low": 0.5, "high": 1.0},
        f"{_MODEL}.lambda_l1": {"type": "float", "low": 1e-3, "high": 1000.0, "log": True},
        f"{_MODEL}.lambda_l2": {"type": "float", "low": 1e-3, "high": 1000.0, "log": True},
        f"{_MODEL}.min_data_in_leaf": {"type": "int", "low": 10, "high": 500, "log": True},
    },
    "mlp": {
        f"{_MODEL}.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        f"{_MODEL}.weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
        f"{_MODEL}.batch_size": {"type": "categorical", "choices": [512, 1024, 2048, 4096]},
        f"{_MODEL}.pt_model_kwargs.dropout": {"type": "float", "low": 0.0, "high": 0.5},
    },
    "rnn": {  # GRU, LSTM and ALSTM share these parameters
        f"{_MODEL}.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        f"{_MODEL}.hidden_size": {"type": "categorical", "choices": [32, 64, 128]},
        f"{_MODEL}.num_layers": {"type": "int", "low": 1, "high": 3},
        f"{_MODEL}.dropout": {"type": "float", "low": 0.0, "high": 0.5},
        f"{_MODEL}.weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
    },
    "topk_dropout": {
        f"{_STRATEGY}.topk": {"type": "int", "low": 5, "high": 100, "step": 5},
        f"{_STRATEGY}.n_drop": {"type": "int", "low": 1, "high": 10},
    },
}
PRESET_SPACES = {**PRESET_SPACES, "gru": PRESET_SPACES["rnn"], "lstm": PRESET_SPACES["rnn"]}
PRESET_SPACES = {**PRESET_SPACES, "alstm": PRESET_SPACES["rnn"]}


def preset_space(name: str, where: str) -> dict[str, ParamSpace]:
    """A ready-made space by name (``lightgbm``, ``mlp``, ``gru``/``lstm``/``alstm``, ...)."""
    key = name.lower().replace("-", "_")
    if key not in PRESET_SPACES:
        raise ConfigError(
            f"{where}: unknown ready-made space {name!r}; available: "
            f"{', '.join(sorted(PRESET_SPACES))}"
        )
    return parse_space(PRESET_SPACES[key], f"{where}[{name}]")


def validate_space_paths(
    workflow: Mapping[str, Any], space: Mapping[str, ParamSpace], where: str
) -> None:
    """Check every key path of ``space`` against the workflow before any trial runs."""
    for path in space:
        if not path.startswith("task."):
            raise ConfigError(
                f"{where}.{path}: key paths must start with 'task.' (the part of the workflow "
                "a trial runs); e.g. task.model.kwargs.learning_rate"
            )
        try:
            check_path(workflow, path)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None


def decode_params(space: Mapping[str, ParamSpace], stored: Mapping[str, Any]) -> dict[str, Any]:
    """Workflow values of the params Optuna stored for a trial (indices decoded)."""
    return {
        path: space[path].decode(value) if path in space else value
        for path, value in stored.items()
    }
