"""SMTP and database faults around `run --once`: nothing dropped, nothing sent twice."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from credmail.entrypoints.daemon import run_once
from credmail.samples import SAMPLES
from tests.support.servers import Dovecot, SmtpServer, free_port
from tests.support.wiring import make_app, server_settings

pytestmark = pytest.mark.integration


def sample(name: str) -> bytes:
    return next(s for s in SAMPLES if s.name == name).to_bytes()


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class StallingServer:
    """Accepts TCP connections and never says a word."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() in the other thread
        self.sock.close()
        self.thread.join(timeout=5)
        for conn in self.held:
            conn.close()


@pytest.fixture
def port() -> int:
    return free_port()


def test_a_stalled_server_times_out_and_the_mail_waits(
    dovecot: Dovecot, db_url: str, port: int
) -> None:
    stalled = StallingServer(port)
    smtp = SmtpServer(port=port)
    clock = Clock()
    app = make_app(server_settings(dovecot, smtp, db_url, smtp__timeout_seconds="1"), clock=clock)
    dovecot.append(sample("adult-guardian"))
    try:
        result = run_once(app)
    finally:
        stalled.close()
    assert (result["sent"], result["retried"]) == (0, 1)
    smtp.start()
    try:
        clock.now += timedelta(hours=1)
        assert run_once(app)["sent"] == 1
        assert len(smtp.handler.messages) == 1
    finally:
        smtp.stop()


def test_temporary_refusals_are_retried_until_delivered(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    clock = Clock()
    app = make_app(server_settings(dovecot, smtp, db_url), clock=clock)
    dovecot.append(sample("adult-guardian"))
    smtp.handler.refuse_with = "451 4.3.0 try again later"
    for _ in range(3):
        assert run_once(app)["retried"] == 1
        clock.now += timedelta(hours=2)
    smtp.handler.refuse_with = None
    assert run_once(app)["sent"] == 1
    with app.uow() as uow:
        (row,) = uow.outbox.listing(None)
    assert (row.status, row.attempts) == ("sent", 4)
    assert len(smtp.handler.messages) == 1


def test_permanent_failure_appears_in_review(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    dovecot.append(sample("adult-guardian"))
    smtp.handler.refuse_with = "550 5.1.1 no such user"
    assert run_once(app)["failed"] == 1
    (item,) = app.review.pending()
    assert item.reasons == ("delivery_failed",)
    assert item.sender == "mario.rossi@example.org"


def test_a_locked_sqlite_database_is_waited_for(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, sqlite_url))
    dovecot.append(sample("adult-guardian"))
    locker = sqlite3.connect(
        sqlite_url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
    )
    locker.execute("BEGIN EXCLUSIVE")
    released = threading.Timer(2.0, lambda: locker.execute("COMMIT"))
    started = time.monotonic()
    released.start()
    try:
        result = run_once(app)
    finally:
        released.join()
        locker.close()
    assert result["sent"] == 1
    assert time.monotonic() - started >= 1.9  # it really waited for the lock


@pytest.fixture
def inject_db_outage(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Make the first N ledger writes fail as a dropped database connection would."""
    from sqlalchemy.exc import OperationalError

    from credmail.adapters.db.repositories import SqlLedger

    remaining = [2]
    original = SqlLedger.add

    def flaky(self: SqlLedger, *args: object, **kwargs: object) -> int:
        if remaining[0] > 0:
            remaining[0] -= 1
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SqlLedger, "add", flaky)
    yield remaining


def test_a_database_outage_is_not_blamed_on_the_message(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, inject_db_outage: list[int]
) -> None:
    app = make_app(server_settings(dovecot, smtp, sqlite_url))
    dovecot.append(sample("adult-guardian"))
    from sqlalchemy.exc import OperationalError

    for _ in range(2):
        with pytest.raises(OperationalError):
            run_once(app)
    assert app.review.pending() == []
    assert run_once(app)["sent"] == 1
    assert len(dovecot.folder_messages("Credenziali/Evase")) == 1
