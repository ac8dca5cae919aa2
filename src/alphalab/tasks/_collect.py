"""Collect the artifacts of many runs, group them, and merge them (Qlib's names).

``RecorderCollector(experiment, process_list=RollingGroup())()`` gives, per artifact, one
prediction frame per model: the rolling windows of a study merged into one continuous frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from alphalab.exceptions import ConfigError, NotFoundError
from alphalab.logging import get_logger
from alphalab.tracking import Experiment, R, Recorder

logger = get_logger(__name__)

Process = Callable[[dict[Any, Any]], Any]


# ----- ensembles --------------------------------------------------------------------------


class Ensemble:
    """Merge a ``{key: artifact}`` dict into one artifact."""

    def __call__(self, ensemble_dict: Mapping[Any, Any]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement __call__")


class SingleKeyEnsemble(Ensemble):
    """Unwrap a dict with one key (recursively); leave other dicts as they are."""

    def __call__(self, ensemble_dict: Any, recursion: bool = True) -> Any:
        if not isinstance(ensemble_dict, Mapping):
            return ensemble_dict
        if recursion:
            ensemble_dict = {k: self(v, recursion) for k, v in ensemble_dict.items()}
        if len(ensemble_dict) == 1:
            return next(iter(ensemble_dict.values()))
        return ensemble_dict


def _frames(ensemble_dict: Mapping[Any, Any], who: str) -> list[pd.DataFrame | pd.Series]:
    if not ensemble_dict:
        raise ConfigError(f"{who} got nothing to merge (no runs collected?)")
    frames = list(ensemble_dict.values())
    for key, frame in zip(ensemble_dict, frames, strict=True):
        if not isinstance(frame, pd.DataFrame | pd.Series):
            raise ConfigError(
                f"{who} merges pandas frames; the artifact of {key!r} is a {type(frame).__name__}"
            )
    return frames


def _first_date(frame: pd.DataFrame | pd.Series) -> Any:
    index = frame.index
    dates = index.get_level_values("datetime") if "datetime" in (index.names or []) else index
    return dates.min() if len(dates) else pd.Timestamp.max


class RollingEnsemble(Ensemble):
    """Concatenate rolling windows into one frame; on overlapping rows later windows win.

    Windows are ordered by their first date (then by key), so the prediction of the most
    recently trained model is kept wherever two windows cover the same (datetime, instrument).
    """

    def __call__(self, ensemble_dict: Mapping[Any, Any]) -> pd.DataFrame | pd.Series:
        frames = _frames(ensemble_dict, "RollingEnsemble")
        keys = list(ensemble_dict)
        order = sorted(range(len(frames)), key=lambda i: (_first_date(frames[i]), str(keys[i])))
        merged = pd.concat([frames[i] for i in order])
        merged = merged[~merged.index.duplicated(keep="last")]
        return merged.sort_index()


class AverageEnsemble(Ensemble):
    """Average several models' predictions after standardising each per date.

    Each column of each frame is z-scored within every datetime (cross-sectionally) so models
    with different scales weigh the same; the result is the mean over models, on the union of
    their rows (a model missing a row is left out of that row's mean).
    """

    def __call__(self, ensemble_dict: Mapping[Any, Any]) -> pd.DataFrame | pd.Series:
        frames = _frames(ensemble_dict, "AverageEnsemble")
        as_series = all(isinstance(f, pd.Series) for f in frames)
        tables = [f.to_frame() if isinstance(f, pd.Series) else f for f in frames]
        columns = list(tables[0].columns)
        if any(list(t.columns) != columns for t in tables):
            raise ConfigError("AverageEnsemble needs frames with the same columns")
        standardised = []
        for table in tables:
            grouped = table.groupby(level="datetime")
            std = grouped.transform("std").replace(0.0, float("nan"))
            standardised.append((table - grouped.transform("mean")) / std)
        merged = pd.concat(standardised, axis=0).groupby(level=[0, 1]).mean().sort_index()
        merged.index.names = tables[0].index.names
        return merged.iloc[:, 0] if as_series else merged


# ----- groups -----------------------------------------------------------------------------


class Group:
    """Split a ``{key: artifact}`` dict into groups and merge each group with ``ens``.

    Args:
        group_func: ``group_func(ungrouped) -> {group_key: {sub_key: artifact}}``.
        ens: Merges each group (default: keep the group's dict).
    """

    def __init__(
        self,
        group_func: Callable[[Mapping[Any, Any]], dict[Any, dict[Any, Any]]] | None = None,
        ens: Ensemble | None = None,
    ) -> None:
        self._group_func = group_func
        self._ens_func = ens

    def group(self, ungrouped_dict: Mapping[Any, Any]) -> dict[Any, dict[Any, Any]]:
        """Split into groups."""
        if self._group_func is None:
            raise ConfigError(f"{type(self).__name__} needs a group_func")
        return self._group_func(ungrouped_dict)

    def reduce(self, grouped_dict: Mapping[Any, Mapping[Any, Any]]) -> dict[Any, Any]:
        """Merge each group."""
        if self._ens_func is None:
            return {k: dict(v) for k, v in grouped_dict.items()}
        return {key: self._ens_func(values) for key, values in grouped_dict.items()}

    def __call__(self, ungrouped_dict: Mapping[Any, Any]) -> dict[Any, Any]:
        return self.reduce(self.group(ungrouped_dict))


class RollingGroup(Group):
    """Group rolling windows by everything but the last part of their key, then merge them.

    Keys are tuples whose last element identifies the window (e.g. its test segment); the
    default merge is :class:`RollingEnsemble`.
    """

    def __init__(self, ens: Ensemble | None = None) -> None:
        super().__init__(ens=ens if ens is not None else RollingEnsemble())

    def group(self, ungrouped_dict: Mapping[Any, Any]) -> dict[Any, dict[Any, Any]]:
        grouped: dict[Any, dict[Any, Any]] = {}
        for key, value in ungrouped_dict.items():
            if not isinstance(key, tuple) or len(key) < 2:
                raise ConfigError(
                    f"RollingGroup needs tuple keys (group..., window); got {key!r}: make "
                    "rec_key_func return e.g. (model_class, test_segment)"
                )
            grouped.setdefault(key[:-1], {})[key[-1]] = value
        return grouped


# ----- collectors -------------------------------------------------------------------------


class Collector:
    """Collects something into a dict, then runs each process over each entry."""

    def __init__(self, process_list: Process | Sequence[Process] | None = None) -> None:
        if process_list is None:
            process_list = []
        elif callable(process_list):
            process_list = [process_list]
        self.process_list: list[Process] = list(process_list)

    def collect(self) -> dict[Any, Any]:
        """``{name: {key: artifact}}``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement collect")

    @staticmethod
    def process_collect(
        collected_dict: Mapping[Any, Any], process_list: Iterable[Process] | None = None
    ) -> dict[Any, Any]:
        """Apply each process in turn to each entry of ``collected_dict``."""
        processes = list(process_list or [])
        result = {}
        for name, value in collected_dict.items():
            for process in processes:
                value = process(value)
            result[name] = value
        return result

    def __call__(self) -> dict[Any, Any]:
        return self.process_collect(self.collect(), self.process_list)


def default_rec_key(recorder: Recorder) -> tuple[str, tuple[str, str]]:
    """``(model class, (test start, test end))`` from the run's saved task."""
    task = recorder.load_object("task")
    test = task["dataset"]["kwargs"]["segments"]["test"]
    return task["model"]["class"], (str(test[0]), str(test[1]))


class RecorderCollector(Collector):
    """Load artifacts of an experiment's runs, keyed by ``rec_key_func(recorder)``.

    Args:
        experiment: An Experiment, its name, or a callable returning one.
        process_list: Processes applied to each artifact's ``{key: object}`` dict (e.g.
            :class:`RollingGroup`).
        rec_key_func: Key of a run (default :func:`default_rec_key`).
        rec_filter_func: Keep a run only when this returns True.
        artifacts_path: ``{artifact name: path in the run}`` (default ``{"pred": "pred.pkl"}``).
        artifacts_key: Collect only these artifact names.
        list_kwargs: Passed to ``Experiment.list_recorders``.
        status: Only runs in these statuses (default: finished ones).
    """

    def __init__(
        self,
        experiment: Experiment | str | Callable[[], Experiment],
        process_list: Process | Sequence[Process] | None = None,
        rec_key_func: Callable[[Recorder], Any] | None = None,
        rec_filter_func: Callable[[Recorder], bool] | None = None,
        artifacts_path: Mapping[str, str] | None = None,
        artifacts_key: str | Sequence[str] | None = None,
        list_kwargs: Mapping[str, Any] | None = None,
        status: Iterable[str] = ("FINISHED",),
    ) -> None:
        super().__init__(process_list)
        self.experiment = experiment
        self.rec_key_func = rec_key_func or default_rec_key
        self.rec_filter_func = rec_filter_func
        self.artifacts_path = dict(artifacts_path or {"pred": "pred.pkl"})
        self.artifacts_key = artifacts_key
        self.list_kwargs = dict(list_kwargs or {})
        self.status = set(status)

    def _experiment(self) -> Experiment:
        if isinstance(self.experiment, str):
            return R.get_exp(experiment_name=self.experiment, create=False)
        if isinstance(self.experiment, Experiment):
            return self.experiment
        return self.experiment()

    def collect(
        self,
        artifacts_key: str | Sequence[str] | None = None,
        rec_filter_func: Callable[[Recorder], bool] | None = None,
        only_exist: bool = True,
    ) -> dict[str, dict[Any, Any]]:
        """``{artifact name: {run key: object}}`` over the matching runs.

        Raises:
            ConfigError: when two runs have the same key (make ``rec_key_func`` finer).
            NotFoundError: for a missing artifact when ``only_exist`` is False.
        """
        keys = artifacts_key or self.artifacts_key or list(self.artifacts_path)
        names = [keys] if isinstance(keys, str) else list(keys)
        unknown = [n for n in names if n not in self.artifacts_path]
        if unknown:
            raise ConfigError(
                f"Unknown artifact key(s) {unknown}; known: {list(self.artifacts_path)}"
            )
        keep = rec_filter_func or self.rec_filter_func
        listed = self._experiment().list_recorders("list", **self.list_kwargs)
        recorders: list[Recorder] = list(listed.values() if isinstance(listed, dict) else listed)
        collected: dict[str, dict[Any, Any]] = {name: {} for name in names}
        owners: dict[Any, str] = {}
        for recorder in recorders:
            if recorder.status.value not in self.status:
                continue
            if keep is not None and not keep(recorder):
                continue
            key = self.rec_key_func(recorder)
            if key in owners:
                raise ConfigError(
                    f"Runs {owners[key]} and {recorder.id} share the key {key!r}; give "
                    "RecorderCollector a rec_key_func that tells them apart (or a filter)"
                )
            owners[key] = recorder.id
            listings: dict[str | None, list[str]] = {}
            for name in names:
                path = self.artifacts_path[name]
                parent = path.rsplit("/", 1)[0] if "/" in path else None
                if parent not in listings:
                    listings[parent] = recorder.list_artifacts(parent)
                if path not in listings[parent]:
                    if only_exist:
                        continue
                    raise NotFoundError(f"Run {recorder.id} has no artifact {path!r}")
                collected[name][key] = recorder.load_object(path)
        return collected
