"""PyTorch models (the ``torch`` extra): MLP, GRU, LSTM and ALSTM."""

from alphalab.model._torch._models import ALSTM, GRU, LSTM, MLPModel

__all__ = ["ALSTM", "GRU", "LSTM", "MLPModel"]
