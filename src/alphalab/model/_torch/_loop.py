"""The shared PyTorch training loop: batches, early stopping on the valid score, best weights."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from alphalab._progress import make_progress
from alphalab._training import report_training
from alphalab.exceptions import ConfigError

#: Build the network input from a float32 feature batch (e.g. reshape to a sequence).
InputFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class Samples:
    """Samples of one segment: a batch getter plus the (datetime, instrument) index.

    ``get(positions)`` returns float32 features (NaN allowed; they become 0) and labels.
    """

    get: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    index: pd.MultiIndex

    def __len__(self) -> int:
        return len(self.index)

    def keep(self, mask: np.ndarray) -> Samples:
        """Only the samples where ``mask`` is true (e.g. with a finite label)."""
        positions = np.flatnonzero(mask)
        parent = self.get
        return Samples(lambda idx: parent(positions[idx]), self.index[positions])


@dataclass(frozen=True)
class LoopConfig:
    """Hyperparameters of the loop; ``round_batches=None`` makes a round one epoch."""

    n_rounds: int
    batch_size: int
    lr: float
    optimizer: str
    loss: str
    metric: str
    early_stop: int
    weight_decay: float
    round_batches: int | None
    scheduler: str | None
    device: torch.device
    amp: bool
    seed: int | None


def make_optimizer(name: str, params: Any, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """``adam``, ``adamw`` or ``sgd``/``gd``."""
    key = name.lower()
    if key == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if key == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if key in ("sgd", "gd"):
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    raise ConfigError(f"optimizer must be 'adam', 'adamw' or 'sgd'; got {name!r}")


def check_loss_metric(loss: str, metric: str) -> None:
    """Reject losses and metrics the loop does not know."""
    if loss not in ("mse", "mae"):
        raise ConfigError(f"loss must be 'mse' or 'mae'; got {loss!r}")
    if metric not in ("", "loss", "ic"):
        raise ConfigError(f"metric must be '', 'loss' or 'ic'; got {metric!r}")


def resolve_device(gpu: int | str | None, device: str | None) -> torch.device:
    """``device`` wins; otherwise ``GPU`` (Qlib's index) when CUDA exists, else the CPU."""
    if device is not None:
        return torch.device(device)
    if gpu is not None and str(gpu) != "-1" and torch.cuda.is_available():
        return torch.device(f"cuda:{gpu}")
    return torch.device("cpu")


def _loss(pred: torch.Tensor, label: torch.Tensor, kind: str) -> torch.Tensor:
    diff = pred - label
    return (diff**2).mean() if kind == "mse" else diff.abs().mean()


def _batches(n: int, size: int, order: np.ndarray | None = None) -> Iterator[np.ndarray]:
    positions = np.arange(n) if order is None else order
    for start in range(0, n, size):
        yield positions[start : start + size]


def predict_samples(
    net: nn.Module, samples: Samples, to_input: InputFn, cfg: LoopConfig
) -> np.ndarray:
    """Network outputs for every sample, in sample order."""
    net.eval()
    outputs = []
    with torch.no_grad():
        for idx in _batches(len(samples), cfg.batch_size):
            x, _ = samples.get(idx)
            tensor = torch.from_numpy(np.nan_to_num(to_input(x))).to(cfg.device)
            outputs.append(net(tensor).float().cpu().numpy())
    return np.concatenate(outputs) if outputs else np.empty(0, dtype=np.float32)


def _daily_ic(pred: np.ndarray, label: np.ndarray, index: pd.MultiIndex) -> float:
    """Mean over dates of the Pearson correlation of prediction and label."""
    codes, _ = pd.factorize(index.get_level_values("datetime"))
    count = np.bincount(codes).astype(float)
    dp = pred - (np.bincount(codes, pred) / count)[codes]
    dy = label - (np.bincount(codes, label) / count)[codes]
    cov = np.bincount(codes, dp * dy)
    var = np.bincount(codes, dp * dp) * np.bincount(codes, dy * dy)
    usable = (count >= 2) & (var > 0)
    return float(np.mean(cov[usable] / np.sqrt(var[usable]))) if usable.any() else math.nan


def evaluate(
    net: nn.Module, samples: Samples, to_input: InputFn, cfg: LoopConfig
) -> dict[str, float]:
    """Loss (and IC when the metric asks) of ``net`` on ``samples``; ``score`` is maximised."""
    pred = predict_samples(net, samples, to_input, cfg)
    label = np.concatenate([samples.get(idx)[1] for idx in _batches(len(samples), cfg.batch_size)])
    diff = pred - label
    loss = float((diff**2).mean() if cfg.loss == "mse" else np.abs(diff).mean())
    out = {"loss": loss}
    if cfg.metric == "ic":
        out["ic"] = _daily_ic(pred, label, samples.index)
        out["score"] = out["ic"]
    else:
        out["score"] = -loss
    return out


def train(
    net: nn.Module,
    train_set: Samples,
    valid_set: Samples | None,
    to_input: InputFn,
    cfg: LoopConfig,
    description: str,
) -> tuple[nn.Module, dict[str, list[float]]]:
    """Train with early stopping on the valid score; return the net with its best weights.

    Without a valid segment the train score decides. Each round's train/valid loss and
    metric are reported to the training reporter (and so to the active run).
    """
    if cfg.seed is not None:
        torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net.to(cfg.device)
    optimizer = make_optimizer(cfg.optimizer, net.parameters(), cfg.lr, cfg.weight_decay)
    scheduler = (
        torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=10)
        if cfg.scheduler == "default"
        else None
    )
    use_amp = cfg.amp and cfg.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    history: dict[str, list[float]] = {"train": [], "valid": []}
    best_score, best_state, best_round, stale = -math.inf, None, 0, 0
    stream: Iterator[np.ndarray] = iter(())

    def next_batch() -> np.ndarray:
        nonlocal stream
        batch = next(stream, None)
        if batch is None:
            stream = _batches(len(train_set), cfg.batch_size, rng.permutation(len(train_set)))
            batch = next(stream)
        return batch

    with make_progress() as progress:
        task = progress.add_task(description, total=cfg.n_rounds)
        for round_no in range(1, cfg.n_rounds + 1):
            net.train()
            n_batches = cfg.round_batches or math.ceil(len(train_set) / cfg.batch_size)
            if cfg.round_batches is None:
                stream = _batches(len(train_set), cfg.batch_size, rng.permutation(len(train_set)))
            for _ in range(n_batches):
                x, y = train_set.get(next_batch())
                xt = torch.from_numpy(np.nan_to_num(to_input(x))).to(cfg.device)
                yt = torch.from_numpy(y).to(cfg.device)
                optimizer.zero_grad(set_to_none=True)
                autocast = torch.autocast("cuda", dtype=torch.float16) if use_amp else nullcontext()
                with autocast:
                    loss = _loss(net(xt).float(), yt, cfg.loss)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    nn.utils.clip_grad_value_(net.parameters(), 3.0)
                    optimizer.step()
            train_eval = evaluate(net, train_set, to_input, cfg)
            metrics = {f"train.{k}": v for k, v in train_eval.items() if k != "score"}
            score = train_eval["score"]
            if valid_set is not None and len(valid_set):
                valid_eval = evaluate(net, valid_set, to_input, cfg)
                metrics.update({f"valid.{k}": v for k, v in valid_eval.items() if k != "score"})
                score = valid_eval["score"]
                history["valid"].append(score)
            history["train"].append(train_eval["score"])
            report_training(round_no, metrics)
            progress.update(task, advance=1, description=f"{description} (score {score:.4g})")
            if scheduler is not None:
                scheduler.step(score)
            if score > best_score:
                best_score, best_round, stale = score, round_no, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                stale += 1
                if stale >= cfg.early_stop:
                    break
    if best_state is not None:
        net.load_state_dict(best_state)
    history["best_round"] = [float(best_round)]
    return net, history
