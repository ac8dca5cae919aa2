"""Task generation (Qlib's names): rolling windows over trading days, label horizons.

Windows are counted in trading days of the market store's calendar (or one given
explicitly), never in calendar days. A rolling study turns one task into a list of tasks whose
``test`` segments tile the original test period in blocks of ``step`` trading days.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from alphalab.exceptions import ConfigError


def _segments(task: Mapping[str, Any]) -> dict[str, Any]:
    try:
        segments = task["dataset"]["kwargs"]["segments"]
    except (KeyError, TypeError):
        raise ConfigError(
            "A task to roll needs dataset.kwargs.segments ({train, valid, test: [start, end]})"
        ) from None
    if not isinstance(segments, Mapping):
        raise ConfigError(f"dataset.kwargs.segments must be a mapping; got {segments!r}")
    return dict(segments)


def _day(value: np.datetime64) -> str:
    return str(pd.Timestamp(value).date())


class TradingCalendar:
    """Trading days as a sorted array, with snapping of dates to trading-day positions."""

    def __init__(self, days: Iterable[Any]) -> None:
        values = pd.DatetimeIndex(pd.to_datetime(list(days))).sort_values().unique()
        if len(values) == 0:
            raise ConfigError("The trading calendar is empty")
        self.days = values.values.astype("datetime64[ns]")

    @classmethod
    def of(cls, calendar: Iterable[Any] | TradingCalendar | None) -> TradingCalendar:
        """The given calendar, or the calendar of the configured market store."""
        if isinstance(calendar, TradingCalendar):
            return calendar
        if calendar is not None:
            return cls(calendar)
        from alphalab.data import open_market_store

        return cls(open_market_store().calendar_array())

    def __len__(self) -> int:
        return len(self.days)

    def first_on_or_after(self, value: Any, what: str) -> int:
        """Position of the first trading day on or after ``value``."""
        idx = int(np.searchsorted(self.days, np.datetime64(pd.Timestamp(value)), side="left"))
        if idx >= len(self.days):
            raise ConfigError(
                f"The {what} {value} is after the last trading day {_day(self.days[-1])}"
            )
        return idx

    def last_on_or_before(self, value: Any, what: str) -> int:
        """Position of the last trading day on or before ``value`` (None: the last day)."""
        if value is None:
            return len(self.days) - 1
        idx = int(np.searchsorted(self.days, np.datetime64(pd.Timestamp(value)), side="right")) - 1
        if idx < 0:
            raise ConfigError(
                f"The {what} {value} is before the first trading day {_day(self.days[0])}"
            )
        return idx

    def day(self, idx: int) -> str:
        """The trading day at ``idx`` (clamped to the calendar) as ``YYYY-MM-DD``."""
        return _day(self.days[max(0, min(idx, len(self.days) - 1))])


def _bounds(calendar: TradingCalendar, name: str, segment: Any) -> tuple[int, int]:
    if not isinstance(segment, list | tuple) or len(segment) != 2:
        raise ConfigError(f"Segment {name!r} must be [start, end]; got {segment!r}")
    start, end = segment
    if start is None:
        raise ConfigError(f"Segment {name!r} needs a start date to be rolled; got {segment!r}")
    lo = calendar.first_on_or_after(start, f"start of segment {name!r}")
    hi = calendar.last_on_or_before(end, f"end of segment {name!r}")
    if hi < lo:
        raise ConfigError(f"Segment {name!r} {segment!r} holds no trading day")
    return lo, hi


def trunc_segments(
    task: dict[str, Any],
    days: int,
    calendar: TradingCalendar,
    test_key: str = "test",
) -> None:
    """Cut every non-test segment at ``days`` trading days before the test start (in place).

    A bound at position ``i`` becomes ``min(i, test_start - days)``: with a label that looks
    ``h`` days ahead, ``days = h + 1`` keeps every training label inside the past.
    """
    segments = task["dataset"]["kwargs"]["segments"]
    test_start = _bounds(calendar, test_key, segments[test_key])[0]
    limit = test_start - days
    for name, segment in segments.items():
        if name == test_key:
            continue
        lo, hi = _bounds(calendar, name, segment)
        segments[name] = [calendar.day(min(lo, limit)), calendar.day(min(hi, limit))]


def handler_mod(task: dict[str, Any], rolling_gen: RollingGen) -> None:
    """Fit a rolled task's handler to its windows (in place).

    The handler's ``end_time`` covers the test segment (None stays None: all data), and
    ``fit_start_time``/``fit_end_time``, when the handler has them, follow the train segment
    so processors learn from the training window only.
    """
    handler = task["dataset"]["kwargs"].get("handler")
    if not isinstance(handler, dict) or not isinstance(handler.get("kwargs"), dict):
        return  # a handler object or a reference: nothing to adjust
    kwargs = handler["kwargs"]
    segments = task["dataset"]["kwargs"]["segments"]
    test_end = segments[rolling_gen.test_key][1]
    end_time = kwargs.get("end_time")
    if test_end is None:
        kwargs["end_time"] = None
    elif end_time is not None and pd.Timestamp(end_time) < pd.Timestamp(test_end):
        kwargs["end_time"] = test_end
    train = segments.get(rolling_gen.train_key)
    if train is not None:
        if "fit_start_time" in kwargs:
            kwargs["fit_start_time"] = train[0]
        if "fit_end_time" in kwargs:
            kwargs["fit_end_time"] = train[1]


class TaskGen(ABC):
    """Turns one task into several (Qlib's ``TaskGen``)."""

    @abstractmethod
    def generate(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        """The tasks generated from ``task`` (which is left unchanged)."""

    def __call__(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        return self.generate(task)


def task_generator(
    tasks: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    generators: TaskGen | Sequence[TaskGen],
) -> list[dict[str, Any]]:
    """Apply each generator in turn to every task (the product of all generators)."""
    current = [dict(tasks)] if isinstance(tasks, Mapping) else [dict(t) for t in tasks]
    for gen in [generators] if isinstance(generators, TaskGen) else list(generators):
        current = [new for task in current for new in gen.generate(task)]
    return current


class RollingGen(TaskGen):
    """Roll a task over its test period in windows of ``step`` trading days.

    Window ``k`` tests trading days ``[s + k*step, s + (k+1)*step - 1]`` (the last window is
    cut at the test end; ``s`` is the first trading day of the task's test segment). Every
    other segment moves ``k*step`` trading days forward; with ``rtype="expanding"`` the train
    segment keeps its start (it grows), with ``"sliding"`` it moves too (fixed length).

    Args:
        step: Trading days per test window.
        rtype: ``"expanding"`` or ``"sliding"``.
        ds_extra_mod_func: Called as ``func(task, self)`` on each new task (default
            :func:`handler_mod`); None to skip.
        test_key: Name of the test segment.
        train_key: Name of the train segment.
        trunc_days: Cut the other segments this many trading days before each test start
            (see :func:`trunc_segments`); None: no cut.
        calendar: Trading days to count with (default: the market store's calendar).
    """

    ROLL_EX = "expanding"
    ROLL_SD = "sliding"

    def __init__(
        self,
        step: int = 40,
        rtype: str = ROLL_EX,
        ds_extra_mod_func: Callable[[dict[str, Any], RollingGen], None] | None = handler_mod,
        test_key: str = "test",
        train_key: str = "train",
        trunc_days: int | None = None,
        calendar: Iterable[Any] | None = None,
    ) -> None:
        if not isinstance(step, int) or step < 1:
            raise ConfigError(f"RollingGen step must be an integer >= 1 trading day; got {step!r}")
        if rtype not in (self.ROLL_EX, self.ROLL_SD):
            raise ConfigError(f"RollingGen rtype must be 'expanding' or 'sliding'; got {rtype!r}")
        if trunc_days is not None and trunc_days < 0:
            raise ConfigError(f"trunc_days must be >= 0; got {trunc_days}")
        self.step = step
        self.rtype = rtype
        self.ds_extra_mod_func = ds_extra_mod_func
        self.test_key = test_key
        self.train_key = train_key
        self.trunc_days = trunc_days
        self.calendar = calendar

    def generate(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        segments = _segments(task)
        if self.test_key not in segments:
            raise ConfigError(
                f"The task has no {self.test_key!r} segment to roll; it has: {', '.join(segments)}"
            )
        calendar = TradingCalendar.of(self.calendar)
        test_lo, test_hi = _bounds(calendar, self.test_key, segments[self.test_key])
        others = {
            name: _bounds(calendar, name, seg)
            for name, seg in segments.items()
            if name != self.test_key
        }
        tasks: list[dict[str, Any]] = []
        shift = 0
        while test_lo + shift <= test_hi:
            new = copy.deepcopy(task)
            new_segments: dict[str, Any] = {}
            for name, (lo, hi) in others.items():
                keep_start = name == self.train_key and self.rtype == self.ROLL_EX
                start = lo if keep_start else lo + shift
                new_segments[name] = [calendar.day(start), calendar.day(hi + shift)]
            start = test_lo + shift
            end = min(start + self.step - 1, test_hi)
            new_segments[self.test_key] = [calendar.day(start), calendar.day(end)]
            new["dataset"]["kwargs"]["segments"] = {
                name: new_segments[name] for name in segments
            }  # keep the original order
            if self.trunc_days is not None:
                trunc_segments(new, self.trunc_days, calendar, self.test_key)
            if self.ds_extra_mod_func is not None:
                self.ds_extra_mod_func(new, self)
            tasks.append(new)
            shift += self.step
        return tasks


class MultiHorizonGenBase(TaskGen):
    """One task per label horizon; subclasses say how a horizon changes the task.

    Each generated task's non-test segments end ``horizon + label_leak_n`` trading days
    before the test start (see :func:`trunc_segments`), so no training label sees the test
    period.

    Args:
        horizon: Label horizons in trading days.
        label_leak_n: Extra trading days between the label's end and the test start.
        test_key: Name of the test segment.
        calendar: Trading days to count with (default: the market store's calendar).
    """

    def __init__(
        self,
        horizon: Sequence[int] = (60,),
        label_leak_n: int = 2,
        test_key: str = "test",
        calendar: Iterable[Any] | None = None,
    ) -> None:
        if not horizon or any(int(h) < 1 for h in horizon):
            raise ConfigError(f"horizon must list label horizons >= 1; got {horizon!r}")
        self.horizon = [int(h) for h in horizon]
        self.label_leak_n = label_leak_n
        self.test_key = test_key
        self.calendar = calendar

    @abstractmethod
    def set_horizon(self, task: dict[str, Any], hr: int) -> None:
        """Change ``task`` in place so that its label looks ``hr`` trading days ahead."""

    def generate(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        _segments(task)
        calendar = TradingCalendar.of(self.calendar)
        tasks = []
        for hr in self.horizon:
            new = copy.deepcopy(task)
            self.set_horizon(new, hr)
            trunc_segments(new, hr + self.label_leak_n, calendar, self.test_key)
            tasks.append(new)
        return tasks
