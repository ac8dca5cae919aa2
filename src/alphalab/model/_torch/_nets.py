"""Network modules: an MLP for flat features and GRU/LSTM/ALSTM for sequences."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """Fully connected layers with batch norm, LeakyReLU and dropout, one output."""

    def __init__(self, input_dim: int, layers: Sequence[int] = (256,), dropout: float = 0.05):
        super().__init__()
        blocks: list[nn.Module] = [nn.Dropout(dropout)]
        width = input_dim
        for hidden in layers:
            blocks += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.1)]
            blocks.append(nn.Dropout(dropout))
            width = hidden
        blocks.append(nn.Linear(width, 1))
        self.body = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(-1)


class RNNNet(nn.Module):
    """A GRU or LSTM over (batch, time, d_feat); the last hidden state predicts the label."""

    def __init__(self, cell: str, d_feat: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        rnn_cls = {"GRU": nn.GRU, "LSTM": nn.LSTM}[cell]
        self.rnn = rnn_cls(
            input_size=d_feat,
            hidden_size=hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1, :]).squeeze(-1)


class ALSTMNet(nn.Module):
    """An LSTM/GRU whose output combines the last state with attention over all time steps."""

    def __init__(
        self, d_feat: int, hidden_size: int, num_layers: int, dropout: float, rnn_type: str = "GRU"
    ):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(d_feat, hidden_size), nn.Tanh())
        rnn_cls = {"GRU": nn.GRU, "LSTM": nn.LSTM}[rnn_type]
        self.rnn = rnn_cls(
            input_size=hidden_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.attention = nn.Sequential(
            nn.Linear(hidden_size, hidden_size // 2),
            nn.Dropout(dropout),
            nn.Tanh(),
            nn.Linear(hidden_size // 2, 1, bias=False),
            nn.Softmax(dim=1),
        )
        self.head = nn.Linear(hidden_size * 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embed(x))
        weights = self.attention(out)  # (batch, time, 1)
        context = (out * weights).sum(dim=1)
        return self.head(torch.cat([out[:, -1, :], context], dim=1)).squeeze(-1)
