"""Handlers and loaders: expressions -> feature frames -> processed views."""

from alphalab.data.handler._alpha import Alpha158, Alpha360
from alphalab.data.handler._handler import DataHandlerLP, build_processors, frame_to_pandas
from alphalab.data.handler._loader import QlibDataLoader, parse_loader_config

DataHandler = DataHandlerLP

__all__ = [
    "Alpha158",
    "Alpha360",
    "DataHandler",
    "DataHandlerLP",
    "QlibDataLoader",
    "build_processors",
    "frame_to_pandas",
    "parse_loader_config",
]
