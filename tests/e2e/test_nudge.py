"""Issue 28.3: a decision made in another process (the desk API, as the console calls it,
and the CLI) reaches the SMTP server while `credmail run` runs, without waiting for the
daemon's outbox tick: the tick is set to 300 s and the mail must arrive well before it.

Real `credmail run` subprocess, real aiosmtpd, SQLite (the socket) and PostgreSQL
(LISTEN/NOTIFY); the listener survives a dropped connection; with the nudge polled, or off,
mail is still delivered. Nothing here is timed: bench/nudge.py measures the latency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bench.nudge import main as bench_nudge
from credmail.config import load_settings
from credmail.samples import AUTHSERV_ID
from tests.conftest import _reset_postgres
from tests.support.daemon import Daemon, wait_for
from tests.support.decisions import people_csv, prepare
from tests.support.servers import SmtpServer
from tests.support.wiring import IDENTITY, make_app

pytestmark = pytest.mark.e2e

TICK = "300"  # the outbox tick: far beyond every wait below
WAIT = 60.0  # generous, and still well under TICK: only a nudge delivers in time


def daemon_env(tmp_path: Path, smtp: SmtpServer, db_url: str, **daemon: str) -> dict[str, str]:
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    env = {
        **IDENTITY,
        "CREDMAIL_DATABASE__URL": db_url,
        "CREDMAIL_MAILBOX__KIND": "maildir",
        "CREDMAIL_MAILBOX__MAILDIR_PATH": str(maildir),
        "CREDMAIL_SMTP__HOST": "127.0.0.1",
        "CREDMAIL_SMTP__PORT": str(smtp.port),
        "CREDMAIL_SMTP__SECURITY": "none",
        "CREDMAIL_AUTH__TRUSTED_AUTHSERV_IDS": f'["{AUTHSERV_ID}"]',
        "CREDMAIL_PRIVACY__LOG_KEY": "test-log-key",
        "CREDMAIL_LOGGING__FORMAT": "json",
        "CREDMAIL_DAEMON__OUTBOX_INTERVAL_SECONDS": TICK,
    }
    env.update({f"CREDMAIL_DAEMON__{k.upper()}": v for k, v in daemon.items()})
    return env


def started(tmp_path: Path, env: dict[str, str]) -> tuple[Any, Daemon]:
    """The secretariat's side (this process) and the daemon, listening."""
    app = make_app(load_settings(None, environ=env), directory=False)
    daemon = Daemon(tmp_path, env)
    (tmp_path / "people.csv").write_bytes(people_csv(3))
    imported = daemon.cli("directory", "import", str(tmp_path / "people.csv"))
    assert imported.returncode == 0, imported.stderr
    daemon.start()
    assert wait_for(lambda: daemon.events("nudge.listening"), 30), daemon.text()
    return app, daemon


def delivered(smtp: SmtpServer, count: int) -> bool:
    return wait_for(lambda: len(smtp.handler.messages) >= count, WAIT, step=0.05)


def recipients(smtp: SmtpServer) -> list[str]:
    return [rcpt for _from, rcpts, _raw in smtp.handler.messages for rcpt in rcpts]


def test_a_decision_elsewhere_is_delivered_without_waiting_for_the_tick(
    tmp_path: Path, smtp: SmtpServer, db_url: str
) -> None:
    expected = "socket" if db_url.startswith("sqlite") else "listen"  # what `auto` picks
    app, daemon = started(tmp_path, daemon_env(tmp_path, smtp, db_url))
    try:
        assert daemon.events("nudge.listening")[0]["mode"] == expected
        if expected == "socket":
            socket = Path(f"{db_url.removeprefix('sqlite:///')}-nudge")
            assert socket.is_socket() and socket.stat().st_mode & 0o777 == 0o600
        approve, reject = prepare(app, 0, "approve"), prepare(app, 0, "reject")
        done = prepare(app, 0, "done")
        approve.make()  # the desk API, as the console calls it
        assert delivered(smtp, 1), daemon.text()
        reject.make()
        assert delivered(smtp, 2), daemon.text()
        said = daemon.cli("tasks", "done", str(done.target))  # the CLI, a third process
        assert said.returncode == 0, said.stderr
        assert delivered(smtp, 3), daemon.text()
    finally:
        assert daemon.stop() == 0
    assert recipients(smtp) == [approve.to, reject.to, done.to]
    assert not daemon.events("nudge.lost")
    if expected == "socket":
        assert not socket.exists()  # the daemon removes its socket when it stops


def test_the_listener_survives_a_dropped_connection(tmp_path: Path, smtp: SmtpServer) -> None:
    """PostgreSQL only: SQLite has no LISTEN connection to lose."""
    db_url = _reset_postgres()
    app, daemon = started(tmp_path, daemon_env(tmp_path, smtp, db_url))
    admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            killed = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'credmail nudge' AND datname = current_database()"
                )
            ).all()
        assert killed == [(True,)]
        assert wait_for(lambda: len(daemon.events("nudge.listening")) == 2, 30), daemon.text()
        decision = prepare(app, 1, "approve")
        decision.make()
        assert delivered(smtp, 1), daemon.text()
    finally:
        admin.dispose()
        assert daemon.stop() == 0
    (lost,) = daemon.events("nudge.lost")
    assert lost["mode"] == "listen" and lost["level"] == "warning"
    assert daemon.events("nudge.listening")[1]["reconnected"] is True
    assert recipients(smtp) == [decision.to]


def test_polled_nudge_still_delivers(tmp_path: Path, smtp: SmtpServer, db_url: str) -> None:
    """Behind PgBouncer's transaction mode (no LISTEN there), or by choice: the due index
    is read every nudge_poll_seconds."""
    env = daemon_env(tmp_path, smtp, db_url, nudge="poll", nudge_poll_seconds="0.5")
    app, daemon = started(tmp_path, env)
    try:
        assert daemon.events("nudge.listening")[0]["mode"] == "poll"
        decision = prepare(app, 2, "reject")
        decision.make()
        assert delivered(smtp, 1), daemon.text()
    finally:
        assert daemon.stop() == 0
    assert recipients(smtp) == [decision.to]


def test_with_the_nudge_off_the_tick_still_delivers(tmp_path: Path, smtp: SmtpServer) -> None:
    env = daemon_env(tmp_path, smtp, f"sqlite:///{tmp_path / 'credmail.db'}", nudge="off")
    env["CREDMAIL_DAEMON__OUTBOX_INTERVAL_SECONDS"] = "1"
    app = make_app(load_settings(None, environ=env), directory=False)
    daemon = Daemon(tmp_path, env)
    (tmp_path / "people.csv").write_bytes(people_csv(1))
    assert daemon.cli("directory", "import", str(tmp_path / "people.csv")).returncode == 0
    decision = prepare(app, 0, "approve")
    daemon.start()
    try:
        assert wait_for(lambda: daemon.events("daemon.started"), 30), daemon.text()
        decision.make()
        assert delivered(smtp, 1), daemon.text()
    finally:
        assert daemon.stop() == 0
    assert not daemon.events("nudge.listening")
    assert not (tmp_path / "credmail.db-nudge").exists()
    assert recipients(smtp) == [decision.to]


def test_the_benchmark_runs_small(tmp_path: Path) -> None:
    """bench/nudge.py with three decisions: every mail arrives and the report is written
    (the times are the benchmark's business)."""
    results = bench_nudge(["--decisions", "3", "--modes", "auto", "--output", str(tmp_path)])
    assert [r.delivered for r in results] == [3] * len(results) and results
    assert "| sqlite | auto (socket) | 3 | 3 |" in (tmp_path / "nudge.md").read_text()
