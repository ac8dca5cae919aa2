"""Hyperparameter tuning on Optuna: every trial is a tracked run; studies live in the RDB.

``alphalab tune TUNE.yaml`` (or :func:`run_tune` with :func:`load_tune_config`) searches the
spaces of a pipeline of tuners over any key path of a workflow's task, scoring each trial by a
metric of its run (``Rank IC``, ``1day.excess_return_with_cost.information_ratio``, a
validation loss...). Trials report their training curves so pruners stop bad ones early;
several processes or machines share one study through the task database.
"""

from alphalab.tune._config import (
    Criterion,
    TuneConfig,
    TunerSpec,
    guess_direction,
    load_tune_config,
    parse_criterion,
    parse_tune_config,
    trial_task,
)
from alphalab.tune._objective import TrialObjective, trial_overrides
from alphalab.tune._outputs import trials_frame
from alphalab.tune._space import (
    PRESET_SPACES,
    ParamSpace,
    get_path,
    parse_param,
    parse_space,
    preset_space,
    set_paths,
)
from alphalab.tune._study import SlotLock, open_storage, study_key
from alphalab.tune._tuner import TuneResult, TunerResult, run_tune, study_trials

__all__ = [
    "PRESET_SPACES",
    "Criterion",
    "ParamSpace",
    "SlotLock",
    "TrialObjective",
    "TuneConfig",
    "TuneResult",
    "TunerResult",
    "TunerSpec",
    "get_path",
    "guess_direction",
    "load_tune_config",
    "open_storage",
    "parse_criterion",
    "parse_param",
    "parse_space",
    "parse_tune_config",
    "preset_space",
    "run_tune",
    "set_paths",
    "study_key",
    "study_trials",
    "trial_overrides",
    "trial_task",
    "trials_frame",
]
