"""Settings, workflow files and config-driven object construction (the bottom layer)."""

from alphalab.config._aliases import QLIB_CLASS_ALIASES, QLIB_MODULE_ALIASES
from alphalab.config._instantiate import (
    get_callable_kwargs,
    init_instance_by_config,
    resolve_class,
)
from alphalab.config._placeholders import fill_placeholders, flatten_dict, placeholder_name
from alphalab.config._schema import (
    ComponentConfig,
    SysConfig,
    TaskConfig,
    WorkflowConfig,
    load_workflow,
    validate_workflow,
)
from alphalab.config._settings import (
    ENV_VARS,
    RUNS_DIR_NAME,
    Settings,
    SettingsReport,
    get_settings,
    init,
    reset,
    resolve_settings,
)
from alphalab.config._uri import is_postgres_uri, sqlalchemy_url, sqlite_path, uri_scheme
from alphalab.config._yaml import deep_merge, load_config_file, load_yaml, parse_yaml

__all__ = [
    "ENV_VARS",
    "QLIB_CLASS_ALIASES",
    "QLIB_MODULE_ALIASES",
    "RUNS_DIR_NAME",
    "ComponentConfig",
    "Settings",
    "SettingsReport",
    "SysConfig",
    "TaskConfig",
    "WorkflowConfig",
    "deep_merge",
    "fill_placeholders",
    "flatten_dict",
    "get_callable_kwargs",
    "get_settings",
    "init",
    "init_instance_by_config",
    "is_postgres_uri",
    "load_config_file",
    "load_workflow",
    "load_yaml",
    "parse_yaml",
    "placeholder_name",
    "reset",
    "resolve_class",
    "resolve_settings",
    "sqlalchemy_url",
    "sqlite_path",
    "uri_scheme",
    "validate_workflow",
]
