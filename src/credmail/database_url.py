"""What `[database] url` must be before anything uses it: a URL SQLAlchemy parses, for
SQLite or PostgreSQL, and for PostgreSQL a driver that loads (the `postgres` extra).

The messages never repeat the URL: it may hold the database password."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

EXAMPLES = "postgresql+psycopg://credmail@/credmail?host=/run/postgresql or sqlite:///credmail.db"
POSTGRESQL_DRIVERS = ("postgresql", "postgresql+psycopg")  # plain postgresql means psycopg 3


def check_database_url(url: str) -> None:
    """Raise ValueError naming the `url` key when credmail cannot use this URL."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"url: not a database URL; expected e.g. {EXAMPLES}") from None
    if parsed.get_backend_name() == "sqlite":
        return
    if parsed.drivername not in POSTGRESQL_DRIVERS:
        raise ValueError(
            f"url: credmail runs on SQLite or PostgreSQL (psycopg 3), not {parsed.drivername}://; "
            f"expected e.g. {EXAMPLES}"
        )
    try:
        importlib.import_module("psycopg")
    except ImportError as exc:
        raise ValueError(
            f"url: PostgreSQL needs the driver psycopg ({exc}): install credmail's postgres "
            f"extra, from the checkout: {Path(sys.prefix) / 'bin' / 'pip'} install '.[postgres]'"
        ) from None
