"""The installed version of alphalab."""

__version__ = "0.1.0"
