"""The Alpha158 and Alpha360 handlers: Qlib's standard feature sets with their defaults."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alphalab.data.expr import alpha158, alpha360
from alphalab.data.handler._handler import DataHandlerLP
from alphalab.data.handler._loader import QlibDataLoader
from alphalab.data.storage import MarketStore
from alphalab.exceptions import ConfigError

#: Qlib's default label: the return from the next day's close to the day after.
DEFAULT_LABEL = (["Ref($close, -2)/Ref($close, -1) - 1"], ["LABEL0"])

_ALPHA158_LEARN = (
    {"class": "DropnaLabel"},
    {"class": "CSZScoreNorm", "kwargs": {"fields_group": "label"}},
)
_ALPHA360_INFER = (
    {"class": "ProcessInf", "kwargs": {}},
    {"class": "ZScoreNorm", "kwargs": {}},
    {"class": "Fillna", "kwargs": {}},
)


def _label_config(label: Any) -> tuple[list[str], list[str]]:
    if label is None:
        return DEFAULT_LABEL
    if (
        isinstance(label, list | tuple)
        and len(label) == 2
        and all(isinstance(part, list | tuple) for part in label)
    ):
        return list(label[0]), list(label[1])
    raise ConfigError(
        "label must be (expressions, names), e.g. [['Ref($close, -2)/Ref($close, -1) - 1'], "
        f"['LABEL0']]; got {label!r}"
    )


class _AlphaHandler(DataHandlerLP):
    """Shared construction of the two standard handlers."""

    _default_infer: tuple[Any, ...] = ()
    _default_learn: tuple[Any, ...] = _ALPHA158_LEARN

    def __init__(
        self,
        instruments: str | Sequence[str] = "csi500",
        start_time: Any = None,
        end_time: Any = None,
        freq: str = "day",
        infer_processors: Sequence[Any] | None = None,
        learn_processors: Sequence[Any] | None = None,
        fit_start_time: Any = None,
        fit_end_time: Any = None,
        process_type: str = "append",
        filter_pipe: Sequence[Any] | None = None,
        inst_processors: Sequence[Any] | None = None,
        label: Any = None,
        drop_raw: bool = False,
        store: MarketStore | None = None,
        cache: bool = True,
    ) -> None:
        super().__init__(
            instruments=instruments,
            start_time=start_time,
            end_time=end_time,
            data_loader=None,
            infer_processors=self._default_infer if infer_processors is None else infer_processors,
            learn_processors=self._default_learn if learn_processors is None else learn_processors,
            process_type=process_type,
            drop_raw=drop_raw,
            fit_start_time=fit_start_time,
            fit_end_time=fit_end_time,
            store=store,
            cache=cache,
        )
        self.freq = freq
        self.filter_pipe = filter_pipe
        self.inst_processors = inst_processors
        self.label = label

    def feature_config(self) -> tuple[list[str], list[str]]:
        """The (expressions, names) of the features."""
        raise NotImplementedError

    def _loader(self) -> QlibDataLoader:
        return QlibDataLoader(
            config={"feature": self.feature_config(), "label": _label_config(self.label)},
            filter_pipe=self.filter_pipe,
            freq=self.freq,
            inst_processors=self.inst_processors,
        )


class Alpha158(_AlphaHandler):
    """158 price/volume features (Qlib's Alpha158); learn: DropnaLabel, CSZScoreNorm(label)."""

    def feature_config(self) -> tuple[list[str], list[str]]:
        exprs, names = alpha158()
        return list(exprs), list(names)


class Alpha360(_AlphaHandler):
    """The last 60 days of 6 normalised price/volume series (Qlib's Alpha360).

    Defaults: infer ProcessInf, ZScoreNorm (fit window), Fillna; learn DropnaLabel,
    CSZScoreNorm(label).
    """

    _default_infer = _ALPHA360_INFER

    def feature_config(self) -> tuple[list[str], list[str]]:
        exprs, names = alpha360()
        return list(exprs), list(names)
