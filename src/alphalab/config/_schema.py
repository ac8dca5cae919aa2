"""Validation of workflow files (Qlib's ``qrun`` YAML shape) before any work is done."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alphalab.config._settings import _validate, translate_qlib_kwargs
from alphalab.config._yaml import load_config_file
from alphalab.exceptions import ConfigError


class ComponentConfig(BaseModel):
    """One buildable component: ``{class, module_path, kwargs}``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    class_: str = Field(alias="class", min_length=1)
    module_path: str | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return the component in its YAML form."""
        out: dict[str, Any] = {"class": self.class_}
        if self.module_path is not None:
            out["module_path"] = self.module_path
        out["kwargs"] = self.kwargs
        return out


def _component(value: Any) -> Any:
    """Accept a dotted string (``"module.Class"``) as shorthand for a component."""
    if isinstance(value, str):
        module, _, name = value.replace(":", ".").rpartition(".")
        return {"class": name, "module_path": module or None}
    return value


class TaskConfig(BaseModel):
    """The ``task`` section: a model, a dataset and the records to produce."""

    model_config = ConfigDict(extra="forbid")

    model: ComponentConfig
    dataset: ComponentConfig
    record: list[ComponentConfig] = Field(default_factory=list)

    @field_validator("model", "dataset", mode="before")
    @classmethod
    def _single(cls, value: Any) -> Any:
        return _component(value)

    @field_validator("record", mode="before")
    @classmethod
    def _records(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str | Mapping):
            value = [value]
        if isinstance(value, list):
            return [_component(v) for v in value]
        return value


class SysConfig(BaseModel):
    """The ``sys`` section: folders to add to the import path (absolute, or relative)."""

    model_config = ConfigDict(extra="forbid")

    path: list[str] = Field(default_factory=list)
    rel_path: list[str] = Field(default_factory=list)


class WorkflowConfig(BaseModel):
    """A workflow file. Unknown top-level keys are allowed: Qlib files keep YAML anchors there."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    qlib_init: dict[str, Any] | None = None
    init: dict[str, Any] | None = None
    experiment_name: str | None = Field(default=None, min_length=1)
    task: TaskConfig
    sys: SysConfig | None = None

    @field_validator("qlib_init", "init")
    @classmethod
    def _settings(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        return _validate(translate_qlib_kwargs(value))

    @model_validator(mode="after")
    def _one_init(self) -> WorkflowConfig:
        if self.qlib_init is not None and self.init is not None:
            raise ValueError("give either 'qlib_init' or 'init', not both")
        return self

    @property
    def settings(self) -> dict[str, Any]:
        """Settings from ``qlib_init``/``init``, validated and in alphalab's names."""
        return dict(self.qlib_init or self.init or {})


def format_validation_error(error: ValidationError, source: str) -> str:
    """Render a pydantic error as lines of ``source: key.path: problem (got ...)``."""
    lines = []
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"]) or "<top level>"
        message = item["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        got = ""
        if item["type"] not in ("missing",) and "input" in item:
            shown = repr(item["input"])
            got = f" (got {shown[:80]}{'...' if len(shown) > 80 else ''})"
        lines.append(f"{source}: {path}: {message}{got}")
    return "\n".join(lines)


def validate_workflow(config: Mapping[str, Any], source: str = "<workflow>") -> WorkflowConfig:
    """Validate a workflow mapping; raise ConfigError listing every problem with its key path."""
    try:
        return WorkflowConfig.model_validate(dict(config))
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source)) from None


def load_workflow(path: str | Path) -> tuple[dict[str, Any], WorkflowConfig]:
    """Load a workflow file (with base configs) and validate it.

    Returns:
        The raw merged mapping (for logging and placeholder resolution) and its validated form.
    """
    raw = load_config_file(path)
    return raw, validate_workflow(raw, str(path))
