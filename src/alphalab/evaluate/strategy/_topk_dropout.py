"""TopkDropoutStrategy: hold the top-k scored instruments, replacing at most n_drop a day."""

from __future__ import annotations

from typing import Any

import pandas as pd

from alphalab.exceptions import ConfigError, DataError


def _check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(
            f"The {name!r} parameter of TopkDropoutStrategy must be an int >= {minimum}; "
            f"got {value!r}"
        )


class TopkDropoutStrategy:
    """Hold the ``topk`` best-scored instruments, replacing at most ``n_drop`` a day.

    Each day the held instruments among the ``n_drop`` worst of (held + best candidates) are
    sold and the best-scored instruments not held are bought in their place.

    Construction only stores the parameters (check them with :meth:`validate`, which the
    backtest calls). Day t trades on the scores dated on the trading day before t.

    Args:
        signal: Scores indexed by (datetime, instrument): a Series, or a DataFrame whose first
            column is used (e.g. ``pred.pkl`` with column ``score``).
        topk: Number of instruments to hold.
        n_drop: Number of held instruments that may be replaced each day.
        method_sell: ``"bottom"``: sell the held instruments among the ``n_drop`` lowest scores
            of held + candidates.
        method_buy: ``"top"``: buy the best-scored instruments not held.
        hold_thresh: Minimum number of days an instrument is held before it may be sold.
        only_tradable: Skip untradable instruments when choosing what to buy and sell, instead
            of choosing them and then failing to trade.
        forbid_all_trade_at_limit: At limit-up or limit-down, neither buy nor sell (else only
            buying at limit-up and selling at limit-down are blocked).
        risk_degree: Fraction of the cash available after the sells that is spent on buying.
    """

    def __init__(
        self,
        *,
        signal: pd.Series | pd.DataFrame,
        topk: int,
        n_drop: int,
        method_sell: str = "bottom",
        method_buy: str = "top",
        hold_thresh: int = 1,
        only_tradable: bool = False,
        forbid_all_trade_at_limit: bool = True,
        risk_degree: float = 0.95,
    ) -> None:
        self.signal = signal
        self.topk = topk
        self.n_drop = n_drop
        self.method_sell = method_sell
        self.method_buy = method_buy
        self.hold_thresh = hold_thresh
        self.only_tradable = only_tradable
        self.forbid_all_trade_at_limit = forbid_all_trade_at_limit
        self.risk_degree = risk_degree

    def __repr__(self) -> str:
        return (
            f"TopkDropoutStrategy(topk={self.topk!r}, n_drop={self.n_drop!r}, "
            f"method_sell={self.method_sell!r}, method_buy={self.method_buy!r}, "
            f"hold_thresh={self.hold_thresh!r}, only_tradable={self.only_tradable!r}, "
            f"forbid_all_trade_at_limit={self.forbid_all_trade_at_limit!r}, "
            f"risk_degree={self.risk_degree!r})"
        )

    def validate(self) -> None:
        """Check the parameters.

        Raises:
            ConfigError: A parameter is out of range or of the wrong type.
        """
        _check_int("topk", self.topk, 1)
        _check_int("n_drop", self.n_drop, 0)
        _check_int("hold_thresh", self.hold_thresh, 0)
        if self.method_sell != "bottom":
            raise ConfigError(
                "The 'method_sell' parameter of TopkDropoutStrategy supports only 'bottom'; "
                f"got {self.method_sell!r}"
            )
        if self.method_buy != "top":
            raise ConfigError(
                "The 'method_buy' parameter of TopkDropoutStrategy supports only 'top'; "
                f"got {self.method_buy!r}"
            )
        for name in ("only_tradable", "forbid_all_trade_at_limit"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"The {name!r} parameter of TopkDropoutStrategy must be a bool; "
                    f"got {getattr(self, name)!r}"
                )
        degree = self.risk_degree
        if not isinstance(degree, int | float) or isinstance(degree, bool) or not 0 < degree <= 1:
            raise ConfigError(
                "The 'risk_degree' parameter of TopkDropoutStrategy must be a number in (0, 1]; "
                f"got {degree!r}"
            )

    def scores(self) -> pd.Series:
        """The signal as a float Series indexed by (datetime, instrument).

        Raises:
            DataError: The signal is not indexed by dates and instruments.
        """
        signal = self.signal
        if isinstance(signal, pd.DataFrame):
            if signal.shape[1] == 0:
                raise DataError("The signal of TopkDropoutStrategy is a frame without columns")
            signal = signal.iloc[:, 0]
        if not isinstance(signal, pd.Series):
            raise DataError(
                "The signal of TopkDropoutStrategy must be a pandas Series or DataFrame indexed "
                f"by (datetime, instrument); got {type(signal).__name__}"
            )
        index = signal.index
        if not isinstance(index, pd.MultiIndex) or index.nlevels != 2:
            raise DataError(
                "The signal of TopkDropoutStrategy must have a 2-level index (datetime, instrument)"
            )
        names = list(index.names)
        if "datetime" in names:
            date_level = names.index("datetime")
        elif isinstance(index.levels[1], pd.DatetimeIndex):
            date_level = 1
        else:
            date_level = 0
        if date_level == 1:
            signal = signal.swaplevel(0, 1)
            index = signal.index
        if not isinstance(index.levels[0], pd.DatetimeIndex):
            index = index.set_levels(pd.to_datetime(index.levels[0]), level=0)
        return pd.Series(
            signal.to_numpy(dtype="float64"),
            index=index.set_names(["datetime", "instrument"]),
            name="score",
        )
