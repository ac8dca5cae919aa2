"""Where Qlib's ``module_path``s live in alphalab, so Qlib YAML files run without edits."""

from __future__ import annotations

#: Qlib module -> alphalab module exporting the same class names.
QLIB_MODULE_ALIASES: dict[str, str] = {
    # models
    "qlib.contrib.model": "alphalab.model",
    "qlib.contrib.model.gbdt": "alphalab.model",
    "qlib.contrib.model.linear": "alphalab.model",
    "qlib.contrib.model.double_ensemble": "alphalab.model",
    "qlib.contrib.model.pytorch_nn": "alphalab.model",
    "qlib.contrib.model.pytorch_gru": "alphalab.model",
    "qlib.contrib.model.pytorch_gru_ts": "alphalab.model",
    "qlib.contrib.model.pytorch_lstm": "alphalab.model",
    "qlib.contrib.model.pytorch_lstm_ts": "alphalab.model",
    "qlib.contrib.model.pytorch_alstm": "alphalab.model",
    "qlib.contrib.model.pytorch_alstm_ts": "alphalab.model",
    # data: datasets, handlers, loaders, processors
    "qlib.data.dataset": "alphalab.data",
    "qlib.data.dataset.handler": "alphalab.data",
    "qlib.data.dataset.loader": "alphalab.data",
    "qlib.data.dataset.processor": "alphalab.data",
    "qlib.contrib.data.handler": "alphalab.data",
    # records
    "qlib.workflow.record_temp": "alphalab.workflow",
    # strategies
    "qlib.contrib.strategy": "alphalab.evaluate",
    "qlib.contrib.strategy.signal_strategy": "alphalab.evaluate",
    # trainers, task generation, collection and ensembles
    "qlib.model.trainer": "alphalab.tasks",
    "qlib.workflow.task.gen": "alphalab.tasks",
    "qlib.workflow.task.collect": "alphalab.tasks",
    "qlib.workflow.task.manage": "alphalab.tasks",
    "qlib.model.ens.ensemble": "alphalab.tasks",
    "qlib.model.ens.group": "alphalab.tasks",
}

#: (Qlib module, Qlib class) -> alphalab class name, where alphalab chose another name.
QLIB_CLASS_ALIASES: dict[tuple[str, str], str] = {
    ("qlib.contrib.model.pytorch_nn", "DNNModelPytorch"): "MLPModel",
}


def is_qlib_module(module_path: str) -> bool:
    """Whether ``module_path`` names a module of Qlib."""
    return module_path == "qlib" or module_path.startswith("qlib.")
