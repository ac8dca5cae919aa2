"""Database URI helpers shared by every layer that opens a SQL database."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

#: Schemes users may write for PostgreSQL; all are served by the psycopg (v3) driver.
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")


def uri_scheme(uri: str) -> str:
    """Return the lower-case scheme of ``uri`` ("" for a plain path)."""
    if len(uri) > 1 and uri[1] == ":" and uri[0].isalpha():  # a Windows drive letter
        return ""
    return urlsplit(uri).scheme.lower()


def is_postgres_uri(uri: str) -> bool:
    """Whether ``uri`` names a PostgreSQL database."""
    return uri_scheme(uri) in POSTGRES_SCHEMES


def sqlalchemy_url(uri: str) -> str:
    """Return ``uri`` with a driver SQLAlchemy can load from alphalab's dependencies.

    Plain ``postgresql://`` (and ``postgres://``) URLs select psycopg2 in SQLAlchemy, which
    alphalab does not install; they are rewritten to ``postgresql+psycopg://`` (psycopg 3).
    Other URIs are returned unchanged.
    """
    scheme = uri_scheme(uri)
    if scheme in POSTGRES_SCHEMES and scheme != "postgresql+psycopg":
        return "postgresql+psycopg" + uri[len(scheme) :]
    return uri


def sqlite_path(uri: str) -> Path | None:
    """Return the file path of a ``sqlite:///`` URI, or None for other URIs (or in-memory)."""
    if uri_scheme(uri) != "sqlite":
        return None
    rest = uri[len("sqlite:") :]
    if not rest.startswith("///"):
        return None
    path = rest[3:].split("?", 1)[0]
    if path in ("", ":memory:"):
        return None
    return Path(path)
