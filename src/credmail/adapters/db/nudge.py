"""The nudge: a decision committed in one process (the console, the CLI) wakes the
daemon's outbox worker at once, instead of at its next `daemon.outbox_interval_seconds`.

- PostgreSQL (`listen`): the deciding transaction runs `pg_notify`, which PostgreSQL
  delivers when it commits and drops when it rolls back; the daemon LISTENs on a
  connection of its own (not from the pool), reconnecting when it is lost. Behind
  PgBouncer in transaction mode LISTEN cannot work (the server connection goes back to
  the pool after each transaction), so `auto` polls there (`prepared_statements = false`).
- SQLite (`socket`): the daemon binds a Unix datagram socket next to the database file
  (`<database>-nudge`, mode 0600, the database's own user); after the commit the deciding
  process sends one datagram to it. No socket, a stale one or a full queue are all fine:
  the send is dropped and the daemon's tick delivers.
- `poll` (service/outbox/nudge_poll.py) and `off` send nothing.

Nothing here connects at import or in a constructor.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from credmail.adapters.db.engine import schema_of

if TYPE_CHECKING:
    import psycopg

CHANNEL = "credmail_outbox"
SOCKET_SUFFIX = "-nudge"
MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the final NUL (Linux)
CHECK_SECONDS = 30.0  # how often an idle listener makes sure it still listens
DATAGRAM = b"outbox"


class NudgeLost(Exception):
    """The listening end is gone (its socket file was removed or replaced)."""


def channel_for(engine: Engine) -> str:
    """One channel per school's schema. PostgreSQL cuts channel names at 63 bytes; two
    schemas alike in their first 47 characters would share one, which only wakes the other
    school's daemon for nothing."""
    schema = schema_of(engine)
    return f"{CHANNEL}_{schema}"[:63] if schema else CHANNEL


def socket_path(engine: Engine) -> Path | None:
    """`<database file>-nudge`, or None for an in-memory SQLite database."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return Path(os.path.abspath(database + SOCKET_SUFFIX))


def socket_fits(path: Path) -> bool:
    return len(os.fsencode(path)) <= MAX_SOCKET_PATH


def resolve_mode(setting: str, engine: Engine, prepared_statements: bool) -> str:
    """`daemon.nudge` with `auto` made concrete: listen, socket, poll or off."""
    if setting != "auto":
        return setting
    if engine.dialect.name == "postgresql":
        return "listen" if prepared_statements else "poll"  # false: behind PgBouncer
    path = socket_path(engine)
    return "socket" if path is not None and socket_fits(path) else "poll"


class NudgeSender(Protocol):
    """What a unit of work does with a nudge: inside its transaction, then after commit."""

    def in_transaction(self, session: Session) -> None: ...
    def after_commit(self) -> None: ...


class NoNudge:
    """`poll` and `off`: the daemon finds the mail by itself."""

    def in_transaction(self, session: Session) -> None:
        pass

    def after_commit(self) -> None:
        pass


class NotifyNudge:
    """PostgreSQL: NOTIFY goes out with the transaction's commit, never without it."""

    def __init__(self, channel: str) -> None:
        self.channel = channel

    def in_transaction(self, session: Session) -> None:
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": self.channel})

    def after_commit(self) -> None:
        pass


class SocketNudge:
    """SQLite: one datagram to the daemon's socket once the decision is committed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def in_transaction(self, session: Session) -> None:
        pass

    def after_commit(self) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            # No daemon (no file, or a stale one), another user's socket, a queue already
            # full of nudges: the daemon's own tick delivers; the decision stands.
            with contextlib.suppress(OSError):
                sock.sendto(DATAGRAM, os.fsencode(self.path))


def nudge_sender(mode: str, engine: Engine) -> NudgeSender:
    path = socket_path(engine)
    if mode == "listen":
        return NotifyNudge(channel_for(engine))
    if mode == "socket" and path is not None:
        return SocketNudge(path)
    return NoNudge()


class PgListener:
    """LISTEN on a connection of its own, in autocommit, with TCP keepalives; an idle
    one is checked every CHECK_SECONDS, so a silently dropped one is noticed (psycopg 3.2
    or later: `notifies` with a timeout)."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.channel = engine, channel_for(engine)
        self._connection: psycopg.Connection[Any] | None = None
        self._checked = 0.0

    def open(self) -> None:
        import psycopg  # the postgres extra; only a PostgreSQL daemon gets here
        from psycopg import sql

        _args, params = self.engine.dialect.create_connect_args(self.engine.url)
        params.pop("context", None)
        params.setdefault("connect_timeout", 5)  # a stop waits for no longer connect
        connection = psycopg.connect(
            **params,
            autocommit=True,
            application_name="credmail nudge",
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
        connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        self._connection, self._checked = connection, time.monotonic()

    def wait(self, timeout: float) -> bool:
        connection = self._connection
        assert connection is not None, "open() first"
        heard = any(True for _ in connection.notifies(timeout=timeout, stop_after=1))
        if not heard and time.monotonic() - self._checked > CHECK_SECONDS:
            connection.execute("SELECT 1")  # raises on a lost connection
            self._checked = time.monotonic()
        return heard

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()


class SocketListener:
    """Binds `<database>-nudge` (0600: bound under a temporary name, made private, then
    renamed into place, which also replaces a socket a killed daemon left behind)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._socket: socket.socket | None = None
        self._inode: int | None = None
        self._checked = 0.0

    def open(self) -> None:
        temporary = self.path.with_name(f".credmail-nudge-{os.getpid()}")
        temporary.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(os.fsencode(temporary))
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except OSError:
            sock.close()
            temporary.unlink(missing_ok=True)
            raise
        sock.setblocking(False)
        self._socket, self._inode = sock, self.path.stat().st_ino
        self._checked = time.monotonic()

    def wait(self, timeout: float) -> bool:
        sock = self._socket
        assert sock is not None, "open() first"
        readable, _, _ = select.select([sock], [], [], timeout)
        heard = False
        while readable:
            try:
                sock.recv(64)
                heard = True
            except BlockingIOError:
                break
        if not heard and time.monotonic() - self._checked > CHECK_SECONDS:
            self._checked = time.monotonic()
            if not self._still_ours():
                raise NudgeLost(f"{self.path} was removed or replaced")
        return heard

    def _still_ours(self) -> bool:
        try:
            return self.path.stat().st_ino == self._inode
        except FileNotFoundError:
            return False

    def close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is None:
            return
        sock.close()
        if self._still_ours():  # a newer daemon's socket is left alone
            self.path.unlink(missing_ok=True)
