"""alphalab's loggers: one ``alphalab.*`` hierarchy, quiet unless the application configures it."""

from __future__ import annotations

import logging

ROOT_LOGGER_NAME = "alphalab"

logging.getLogger(ROOT_LOGGER_NAME).addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    """Return the logger for an alphalab module (``__name__`` of the caller)."""
    if not name.startswith(ROOT_LOGGER_NAME):
        name = f"{ROOT_LOGGER_NAME}.{name}"
    return logging.getLogger(name)


def set_log_level(level: int | str) -> None:
    """Set the level of every alphalab logger."""
    logging.getLogger(ROOT_LOGGER_NAME).setLevel(level)
