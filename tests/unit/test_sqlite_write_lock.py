"""SQLite writers take the lock by polling each millisecond, within the same timeout."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from credmail.adapters.db import engine as engine_module
from credmail.adapters.db.engine import make_engine


@pytest.fixture()
def engine(tmp_path: Path) -> Engine:
    made = make_engine(f"sqlite:///{tmp_path / 'lock.db'}")
    with made.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    return made


def hold_lock(path: str, seconds: float, held: threading.Event) -> None:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    held.set()
    time.sleep(seconds)
    other.execute("COMMIT")
    other.close()


def test_a_writer_waits_for_another_and_then_writes(engine: Engine) -> None:
    held = threading.Event()
    path = str(engine.url.database)
    holder = threading.Thread(target=hold_lock, args=(path, 0.3, held))
    holder.start()
    held.wait(5)
    with engine.begin() as connection:  # polls with SQLite's busy timeout at 0
        seen = connection.execute(text("SELECT count(*) FROM t")).scalar()
        connection.execute(text("INSERT INTO t VALUES (2)"))
    holder.join()
    assert seen == 1  # it began only after the other writer committed
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 2
        timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert timeout == engine_module.LOCK_TIMEOUT_SECONDS * 1000  # restored for other statements


def test_a_writer_gives_up_after_the_timeout(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "LOCK_TIMEOUT_SECONDS", 0.05)
    held = threading.Event()
    holder = threading.Thread(target=hold_lock, args=(str(engine.url.database), 0.5, held))
    holder.start()
    held.wait(5)
    try:
        with pytest.raises(OperationalError, match="locked"), engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (3)"))
    finally:
        holder.join()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 1
