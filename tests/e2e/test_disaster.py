"""A disaster, on SQLite and PostgreSQL: the real daemon (`credmail run`, real Dovecot and
SMTP) answers a stream of requests, `credmail db backup` runs mid-stream, the database is
deleted, `credmail db restore` puts the backup back, the daemon starts again.

Nothing the backup held is lost; no request gets two different replies (mail decided
after the backup and moved is not seen again; mail still in the watched folder is decided
once); the review queue, the tasks, the staff accounts and their sign-in, and the audit
log are exactly as they were at the backup, not as they were changed after it. A reply
queued at the backup and sent after it goes again with the same Message-ID (the count is
printed, as the crash test prints its resends)."""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from credmail.config import load_settings
from credmail.service.desks import Actor
from tests.conftest import _reset_postgres
from tests.support.daemon import Daemon, wait_for
from tests.support.links import issue_token
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import make_app, server_env

pytestmark = pytest.mark.e2e

BEFORE, DURING, STOPPED, AFTER = range(0, 30), range(30, 60), range(60, 70), range(70, 80)
UNKNOWN = 3
AS_AT_BACKUP = ("review_items", "register_tasks", "staff", "audit_log")
ADMIN = Actor("maria", "cli")


def people(path: Path) -> Path:
    rows = ["role,username,first_name,last_name,birth_date,emails,students,class"]
    rows += [f"teacher,T{i:04d},Nome{i},Cognome{i},,docente{i}@example.org,," for i in range(90)]
    path.write_text("\n".join(rows) + "\n")
    return path


def append(dovecot: Dovecot, numbers: range, pause: float = 0.0) -> None:
    with dovecot.client() as client:
        for i in numbers:
            message = request(f"docente{i}@example.org").replace(b"Message-ID: <", b"X-Old: <")
            client.append("INBOX", f"Message-ID: <r{i}@t>\r\n".encode() + message)
            threading.Event().wait(pause)


def replies(smtp: SmtpServer) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for msg in smtp.handler.parsed():
        found[str(msg["In-Reply-To"]).strip()].append(str(msg["Message-ID"]).strip())
    return found


def table(engine: Engine, name: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT * FROM {name} ORDER BY 1"))  # noqa: S608 (ours)
        return [tuple(r) for r in rows]


def delete_database(url: str) -> None:
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
    else:
        _reset_postgres()


def test_backup_mid_stream_delete_restore_loses_nothing_and_answers_once(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, tmp_path: Path
) -> None:
    env = server_env(
        dovecot,
        smtp,
        db_url,
        mailbox__poll_interval_seconds="1",
        daemon__outbox_interval_seconds="1",
        smtp__retry_base_seconds="1",
        limits__global_replies_per_hour="100000",
    )
    daemon = Daemon(tmp_path, env)
    assert daemon.cli("directory", "import", str(people(tmp_path / "p.csv"))).returncode == 0
    app = make_app(load_settings(None, environ=env), directory=False)
    desks = app.desks
    desks.staff.add("maria", "amministratore", "vecchia-password-lunga-1", ADMIN)
    session = desks.staff.sign_in("maria", "vecchia-password-lunga-1", "", "127.0.0.1").token
    append(dovecot, BEFORE)
    with dovecot.client() as client:
        for i in range(UNKNOWN):
            client.append("INBOX", request(f"sconosciuto{i}@example.org"))
    backup = tmp_path / "backup"
    daemon.start()
    try:
        assert wait_for(lambda: len(replies(smtp)) >= len(BEFORE), 180, step=0.2)
        assert wait_for(lambda: len(desks.review.pending()) == UNKNOWN, 60, step=0.2)
        first, second, _third = desks.review.pending()
        desks.review.discard(first.id, ADMIN, note="prima del backup")
        desks.reset.spend(issue_token(app, "T0080"))  # a task for the register

        stream = threading.Thread(target=append, args=(dovecot, DURING, 0.05))
        stream.start()
        wait_for(lambda: len(replies(smtp)) >= DURING.start + 5, 60, step=0.05)
        at_backup = {name: table(app.engine, name) for name in (*AS_AT_BACKUP, "ledger")}
        taken = daemon.cli("db", "backup", str(backup))  # mid-stream
        assert taken.returncode == 0, taken.stderr
        stream.join()

        # after the backup: changes the restore must undo
        desks.staff.passwd("maria", "nuova-password-lunga-2", ADMIN)
        desks.review.discard(second.id, ADMIN, note="dopo il backup")
        desks.reset.spend(issue_token(app, "T0081"))
        assert wait_for(lambda: len(replies(smtp)) >= DURING.stop, 180, step=0.2)
        assert daemon.stop(timeout=30) == 0
    finally:
        daemon.kill()
    append(dovecot, STOPPED)  # in the watched folder when the database goes
    app.engine.dispose()

    delete_database(db_url)
    restored = daemon.cli("db", "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    daemon.start()
    try:
        append(dovecot, AFTER)
        assert wait_for(lambda: len(replies(smtp)) >= AFTER.stop, 180, step=0.2)
        threading.Event().wait(3)  # anything still to come (a resend) arrives now
        assert daemon.stop(timeout=30) == 0
    finally:
        daemon.kill()

    found = replies(smtp)
    assert sorted(found) == sorted(f"<r{i}@t>" for i in range(AFTER.stop))
    assert all(len(set(ids)) == 1 for ids in found.values()), daemon.text()[-3000:]
    resends = sum(len(ids) - 1 for ids in found.values())
    assert len(dovecot.folder_messages("Credenziali/Evase")) == AFTER.stop
    assert dovecot.folder_messages("INBOX") == {}

    app = make_app(load_settings(None, environ=env), directory=False)
    for name in AS_AT_BACKUP:
        assert table(app.engine, name) == at_backup[name], name
    ledger = table(app.engine, "ledger")
    # nothing the backup held is lost (a decision read just before the backup may have
    # been moved meanwhile: its id, message and outcome are what cannot change)
    decisions = {(row[0], row[4], row[6]) for row in ledger}
    assert {(row[0], row[4], row[6]) for row in at_backup["ledger"]} <= decisions
    assert [t.username for t in app.desks.tasks.listing(None)] == ["T0080"]
    assert app.desks.staff.session(session) is not None  # signed in at the backup
    app.desks.staff.sign_in("maria", "vecchia-password-lunga-1", "", "127.0.0.1")
    print(
        f"\ndisaster test ({db_url.split(':')[0]}): {len(at_backup['ledger'])} decisions in "
        f"the backup, {AFTER.stop} requests answered once each, {resends} resend(s) with "
        "the same Message-ID"
    )
