"""PyTorch models with Qlib's names and keyword arguments: MLP, GRU, LSTM and ALSTM.

The recurrent models read either a :class:`~alphalab.data.TSDatasetH` (sequences of
``step_len`` days; the label is the last column of the last step) or flat features laid out
as Alpha360 (``d_feat`` series of equal length, each oldest first), which they reshape to
(time, d_feat). Missing feature values enter the network as 0; samples with a missing label
are left out of training.
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from alphalab.data.dataset import TSDataSampler, TSDatasetH
from alphalab.data.handler import DataHandlerLP
from alphalab.exceptions import ConfigError, DataError
from alphalab.model._base import Model, segment_names
from alphalab.model._torch._loop import (
    InputFn,
    LoopConfig,
    Samples,
    check_loss_metric,
    predict_samples,
    resolve_device,
    train,
)
from alphalab.model._torch._nets import MLP, ALSTMNet, RNNNet


def _flat_samples(frame: pd.DataFrame, with_label: bool) -> Samples:
    features = (frame["feature"] if with_label else frame).to_numpy(dtype=np.float32)
    labels = (
        frame["label"].to_numpy(dtype=np.float32)[:, 0]
        if with_label
        else np.full(len(frame), np.nan, dtype=np.float32)
    )
    return Samples(lambda idx: (features[idx], labels[idx]), frame.index)


def _sequence_samples(sampler: TSDataSampler, with_label: bool) -> Samples:
    def get(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = sampler[idx]
        if with_label:
            return batch[:, :, :-1], batch[:, -1, -1]
        return batch, np.full(len(batch), np.nan, dtype=np.float32)

    return Samples(get, sampler.get_index())


class _TorchModel(Model):
    """Shared fit/predict of the PyTorch models; subclasses build the network."""

    # Parameters every PyTorch model takes (set by the subclasses' constructors).
    batch_size: int
    lr: float
    optimizer: str
    loss: str
    metric: str
    weight_decay: float
    GPU: int | str | None
    device: str | None
    amp: bool
    seed: int | None
    n_jobs: int | None

    def _loop_config(self) -> LoopConfig:
        raise NotImplementedError

    def _config(
        self, *, n_rounds: int, early_stop: int, round_batches: int | None, scheduler: str | None
    ) -> LoopConfig:
        """The loop settings from the parameters every PyTorch model shares."""
        check_loss_metric(self.loss, self.metric)
        return LoopConfig(
            n_rounds=n_rounds,
            batch_size=self.batch_size,
            lr=self.lr,
            optimizer=self.optimizer,
            loss=self.loss,
            metric=self.metric,
            early_stop=early_stop,
            weight_decay=self.weight_decay,
            round_batches=round_batches,
            scheduler=scheduler,
            device=resolve_device(self.GPU, self.device),
            amp=self.amp,
            seed=self.seed,
        )

    def _build(self, n_features: int) -> nn.Module:
        raise NotImplementedError

    def _to_input(self, n_features: int) -> InputFn:
        return lambda x: x

    def _samples(self, dataset: Any, segment: str, for_training: bool) -> Samples:
        key = DataHandlerLP.DK_L if for_training else DataHandlerLP.DK_I
        if isinstance(dataset, TSDatasetH):
            col_set = ["feature", "label"] if for_training else "feature"
            sampler = dataset.prepare(segment, col_set=col_set, data_key=key)
            assert isinstance(sampler, TSDataSampler)  # one segment name gives one sampler
            return _sequence_samples(sampler, for_training)
        if for_training:
            frame = dataset.prepare(segment, col_set=["feature", "label"], data_key=key)
            if frame["label"].shape[1] != 1:
                raise DataError(f"{type(self).__name__} trains on one label column")
        else:
            frame = dataset.prepare(segment, col_set="feature", data_key=key)
        return _flat_samples(frame, for_training)

    def fit(
        self, dataset: Any, evals_result: dict[str, Any] | None = None, reweighter: Any = None
    ) -> _TorchModel:
        """Train on ``train`` with early stopping on ``valid``; keeps the best round's weights."""
        if reweighter is not None:
            raise ConfigError(f"{type(self).__name__} does not support sample reweighting")
        names = segment_names(dataset)
        if "train" not in names:
            raise DataError(f"{type(self).__name__}.fit needs a 'train' segment in the dataset")
        train_set = self._samples(dataset, "train", True)
        train_set = train_set.keep(np.isfinite(train_set.get(np.arange(len(train_set)))[1]))
        if len(train_set) == 0:
            raise DataError("The 'train' segment has no sample with a finite label")
        valid_set = None
        if "valid" in names:
            valid_set = self._samples(dataset, "valid", True)
            valid_set = valid_set.keep(np.isfinite(valid_set.get(np.arange(len(valid_set)))[1]))
        n_features = train_set.get(np.arange(1))[0].shape[-1]
        cfg = self._loop_config()
        if cfg.seed is not None:
            torch.manual_seed(cfg.seed)
        net = self._build(n_features)
        threads = self.n_jobs
        previous_threads = torch.get_num_threads()
        if threads:
            torch.set_num_threads(int(threads))
        try:
            net, history = train(
                net, train_set, valid_set, self._to_input(n_features), cfg, type(self).__name__
            )
        finally:
            torch.set_num_threads(previous_threads)
        self.net_ = net.cpu()
        self.n_features_ = n_features
        self.history_ = history
        if evals_result is not None:
            evals_result.update(history)
        return self

    def predict(self, dataset: Any, segment: str = "test") -> pd.Series:
        """Scores of ``segment`` indexed by (datetime, instrument)."""
        net = getattr(self, "net_", None)
        if net is None:
            raise DataError(f"{type(self).__name__} is not fitted yet; call fit(dataset) first")
        samples = self._samples(dataset, segment, False)
        cfg = self._loop_config()
        net.to(cfg.device)
        values = predict_samples(net, samples, self._to_input(self.n_features_), cfg)
        net.cpu()
        return pd.Series(values.astype(float), index=samples.index, name="score")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        net = state.pop("net_", None)
        if net is not None:
            buffer = io.BytesIO()
            torch.save(net, buffer)
            state["_net_bytes"] = buffer.getvalue()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        raw = state.pop("_net_bytes", None)
        self.__dict__.update(state)
        if raw is not None:
            self.net_ = torch.load(io.BytesIO(raw), weights_only=False, map_location="cpu")


class MLPModel(_TorchModel):
    """A multi-layer perceptron on flat features (Qlib's ``DNNModelPytorch``).

    Training runs in rounds of ``eval_steps`` batches, up to ``max_steps`` batches, stopping
    after ``early_stop_rounds`` rounds without a better valid score.
    """

    def __init__(
        self,
        lr: float = 0.001,
        max_steps: int = 300,
        batch_size: int = 2000,
        early_stop_rounds: int = 50,
        eval_steps: int = 20,
        optimizer: str = "adam",
        loss: str = "mse",
        metric: str = "",
        GPU: int | str | None = 0,
        device: str | None = None,
        seed: int | None = None,
        weight_decay: float = 0.0,
        scheduler: str | None = "default",
        pt_model_kwargs: Mapping[str, Any] | None = None,
        amp: bool = False,
        n_jobs: int | None = None,
    ) -> None:
        self.lr = lr
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.early_stop_rounds = early_stop_rounds
        self.eval_steps = eval_steps
        self.optimizer = optimizer
        self.loss = loss
        self.metric = metric
        self.GPU = GPU
        self.device = device
        self.seed = seed
        self.weight_decay = weight_decay
        self.scheduler = scheduler
        self.pt_model_kwargs = dict(pt_model_kwargs or {})
        self.amp = amp
        self.n_jobs = n_jobs

    def _loop_config(self) -> LoopConfig:
        if self.scheduler not in (None, "default"):
            raise ConfigError(f"scheduler must be 'default' or null; got {self.scheduler!r}")
        return self._config(
            n_rounds=max(1, -(-self.max_steps // self.eval_steps)),
            early_stop=self.early_stop_rounds,
            round_batches=self.eval_steps,
            scheduler=self.scheduler,
        )

    def _build(self, n_features: int) -> nn.Module:
        kwargs = dict(self.pt_model_kwargs)
        unknown = set(kwargs) - {"input_dim", "layers", "dropout"}
        if unknown:
            raise ConfigError(
                f"pt_model_kwargs accepts input_dim, layers and dropout; got {sorted(unknown)}"
            )
        input_dim = kwargs.pop("input_dim", n_features)
        if input_dim != n_features:
            raise ConfigError(
                f"pt_model_kwargs.input_dim is {input_dim} but the dataset has {n_features} "
                "features; remove input_dim or fix it"
            )
        return MLP(n_features, **kwargs)


class _RecurrentModel(_TorchModel):
    """Shared parameters of GRU, LSTM and ALSTM (Qlib's names)."""

    def __init__(
        self,
        d_feat: int = 6,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        n_epochs: int = 200,
        lr: float = 0.001,
        metric: str = "",
        batch_size: int = 2000,
        early_stop: int = 20,
        loss: str = "mse",
        optimizer: str = "adam",
        GPU: int | str | None = 0,
        device: str | None = None,
        seed: int | None = None,
        weight_decay: float = 0.0,
        amp: bool = False,
        n_jobs: int | None = None,
    ) -> None:
        self.d_feat = d_feat
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.n_epochs = n_epochs
        self.lr = lr
        self.metric = metric
        self.batch_size = batch_size
        self.early_stop = early_stop
        self.loss = loss
        self.optimizer = optimizer
        self.GPU = GPU
        self.device = device
        self.seed = seed
        self.weight_decay = weight_decay
        self.amp = amp
        self.n_jobs = n_jobs

    def _loop_config(self) -> LoopConfig:
        return self._config(
            n_rounds=self.n_epochs, early_stop=self.early_stop, round_batches=None, scheduler=None
        )

    def _to_input(self, n_features: int) -> InputFn:
        d_feat = self.d_feat

        def reshape(x: np.ndarray) -> np.ndarray:
            if x.ndim == 3:
                return x
            # Alpha360 layout: d_feat blocks of equal length, each oldest first.
            return np.ascontiguousarray(x.reshape(len(x), d_feat, -1).transpose(0, 2, 1))

        return reshape

    def _input_width(self, n_features: int, sequence: bool) -> int:
        if sequence:
            return n_features
        if n_features % self.d_feat:
            raise ConfigError(
                f"{type(self).__name__}: {n_features} flat features cannot be split into "
                f"d_feat={self.d_feat} series; use TSDatasetH or set d_feat"
            )
        return self.d_feat

    def fit(
        self, dataset: Any, evals_result: dict[str, Any] | None = None, reweighter: Any = None
    ) -> _RecurrentModel:
        """Train on ``train`` (sequences or Alpha360-style flat features)."""
        self._sequence = isinstance(dataset, TSDatasetH)
        super().fit(dataset, evals_result, reweighter)
        return self


class GRU(_RecurrentModel):
    """A GRU over the last days of each instrument."""

    def _build(self, n_features: int) -> nn.Module:
        width = self._input_width(n_features, self._sequence)
        return RNNNet("GRU", width, self.hidden_size, self.num_layers, self.dropout)


class LSTM(_RecurrentModel):
    """An LSTM over the last days of each instrument."""

    def _build(self, n_features: int) -> nn.Module:
        width = self._input_width(n_features, self._sequence)
        return RNNNet("LSTM", width, self.hidden_size, self.num_layers, self.dropout)


class ALSTM(_RecurrentModel):
    """An attention LSTM/GRU (``rnn_type``): last state plus attention over all steps."""

    def __init__(self, *, rnn_type: str = "GRU", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rnn_type = rnn_type

    def _build(self, n_features: int) -> nn.Module:
        if self.rnn_type not in ("GRU", "LSTM"):
            raise ConfigError(f"ALSTM rnn_type must be 'GRU' or 'LSTM'; got {self.rnn_type!r}")
        width = self._input_width(n_features, self._sequence)
        return ALSTMNet(width, self.hidden_size, self.num_layers, self.dropout, self.rnn_type)


def _signature_with(base: type, name: str, default: Any) -> inspect.Signature:
    """``base.__init__``'s signature (without self) plus one keyword-only parameter."""
    params = list(inspect.signature(base).parameters.values())
    extra = inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
    return inspect.Signature([*params, extra])


# So that configs are checked against every accepted keyword, not just **kwargs.
ALSTM.__signature__ = _signature_with(_RecurrentModel, "rnn_type", "GRU")  # type: ignore[attr-defined]
