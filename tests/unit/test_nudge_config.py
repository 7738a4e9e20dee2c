"""`[daemon] nudge`: what `auto` picks for each database, and the settings refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from credmail.bootstrap import database_engine, nudge_mode
from credmail.config import ConfigError, load_settings
from tests.support.wiring import IDENTITY

PG = "postgresql+psycopg://credmail@127.0.0.1:5432/credmail"


def mode(url: str, **daemon: str) -> str:
    env = {**IDENTITY, "CREDMAIL_DATABASE__URL": url}
    if "prepared_statements" in daemon:
        env["CREDMAIL_DATABASE__PREPARED_STATEMENTS"] = daemon.pop("prepared_statements")
    env.update({f"CREDMAIL_DAEMON__{k.upper()}": v for k, v in daemon.items()})
    settings = load_settings(None, environ=env)
    engine = database_engine(settings)  # connects to nothing
    try:
        return nudge_mode(settings, engine)
    finally:
        engine.dispose()


def test_auto_listens_on_postgresql_and_polls_behind_pgbouncer() -> None:
    assert mode(PG) == "listen"
    assert mode(PG, prepared_statements="false") == "poll"
    assert mode(PG, nudge="listen", prepared_statements="false") == "listen"  # as told


def test_auto_binds_a_socket_next_to_a_sqlite_file(tmp_path: Path) -> None:
    assert mode(f"sqlite:///{tmp_path / 'credmail.db'}") == "socket"
    assert mode("sqlite:///:memory:") == "poll"
    deep = tmp_path / ("d" * 100) / "credmail.db"  # no room for the path in sun_path
    assert mode(f"sqlite:///{deep}") == "poll"
    with pytest.raises(ConfigError, match="over 107 bytes"):
        mode(f"sqlite:///{deep}", nudge="socket")


@pytest.mark.parametrize(
    ("url", "nudge", "said"),
    [
        ("sqlite:///credmail.db", "listen", "'listen' is for PostgreSQL"),
        (PG, "socket", "'socket' is for SQLite"),
    ],
)
def test_a_nudge_for_the_other_database_is_refused(url: str, nudge: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        mode(url, nudge=nudge)
