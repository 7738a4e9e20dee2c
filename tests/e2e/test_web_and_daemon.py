"""The daemon and `credmail web` on one SQLite file at once: while the daemon answers a
burst of 200 requests from a Maildir, families open and confirm 200 links (200 GETs and
200 POSTs, 16 at a time). No "database is locked", nothing lost: every request answered,
every link spent once, one task per link."""

from __future__ import annotations

import csv
import io
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from credmail.config import load_settings
from credmail.samples import AUTHSERV_ID, Sample
from tests.support.browser import start_web
from tests.support.daemon import Daemon, wait_for
from tests.support.links import issue_token
from tests.support.wiring import IDENTITY, make_app

pytestmark = pytest.mark.e2e

N = 200


def directory(n: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["role", "username", "first_name", "last_name", "birth_date", "emails", "students", "class"]
    )
    for i in range(n):  # M: they write to the mailbox; W: they open their link
        writer.writerow(["teacher", f"M{i:04d}", "Maria", f"Mail{i}", "", f"m{i}@example.org"])
        writer.writerow(["teacher", f"W{i:04d}", "Walter", f"Web{i}", "", f"w{i}@example.org"])
    writer.writerow(["teacher", "T0000", "Tina", "Test", "", ""])
    return out.getvalue().encode()


def seed(maildir: Path, n: int) -> None:
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sample = Sample(f"m{i}", f"m{i}@example.org", "richiesta credenziali", "Buongiorno", "")
        (maildir / "new" / f"{i:05d}.burst:2,").write_bytes(sample.to_bytes())


def confirm(base: str, token: str) -> tuple[int, int, bool]:
    with httpx.Client(base_url=base, timeout=60) as client:
        page = client.get(f"/reset/{token}")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found, page.text
        done = client.post(f"/reset/{token}", data={"csrf_token": found.group(1)})
        return page.status_code, done.status_code, "Richiesta confermata" in done.text


def test_daemon_and_web_share_one_sqlite_file_under_a_burst(tmp_path: Path) -> None:
    maildir, outbox = tmp_path / "Maildir", tmp_path / "sent"
    settings = {
        **IDENTITY,
        "CREDMAIL_DATABASE__URL": f"sqlite:///{tmp_path / 'credmail.db'}",
        "CREDMAIL_MAILBOX__KIND": "maildir",
        "CREDMAIL_MAILBOX__MAILDIR_PATH": str(maildir),
        "CREDMAIL_MAILBOX__PROCESS_EXISTING": "true",
        "CREDMAIL_MAILBOX__POLL_INTERVAL_SECONDS": "1",
        "CREDMAIL_MAILBOX__BATCH_SIZE": "25",
        "CREDMAIL_SMTP__OUTBOX_DIR": str(outbox),
        "CREDMAIL_AUTH__TRUSTED_AUTHSERV_IDS": f'["{AUTHSERV_ID}"]',
        "CREDMAIL_PRIVACY__LOG_KEY": "test-log-key",
        "CREDMAIL_LOGGING__FORMAT": "json",
        "CREDMAIL_WEB__POST_PER_MINUTE": "10000",
        "CREDMAIL_WEB__INVALID_PER_HOUR": "10000",
    }
    app = make_app(load_settings(None, environ=settings), directory=False)
    csv_path = tmp_path / "people.csv"
    csv_path.write_bytes(directory(N))
    daemon = Daemon(tmp_path, settings)
    imported = daemon.cli("directory", "import", str(csv_path))
    assert imported.returncode == 0, imported.stderr
    tokens = [issue_token(app, f"W{i:04d}") for i in range(N)]
    seed(maildir, N)

    web = start_web(tmp_path / "credmail.toml", tmp_path / "web.log")
    daemon.start()
    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda t: confirm(web.url, t), tokens))
        answered = wait_for(lambda: len(list(outbox.glob("*.eml"))) >= N, timeout=90, step=0.2)
    finally:
        daemon.stop(timeout=30)
        web.stop()

    logs = daemon.text() + web.output()
    assert "database is locked" not in logs
    assert not [line for line in logs.splitlines() if '"level": "error"' in line]
    assert results == [(200, 200, True)] * N
    assert answered, f"{len(list(outbox.glob('*.eml')))} of {N} requests answered"
    assert len(list(outbox.glob("*.eml"))) == N
    tasks = app.desks.tasks.listing(None)
    assert sorted(t.username for t in tasks) == [f"W{i:04d}" for i in range(N)]
    assert all(not app.desks.tokens.check(token).valid for token in tokens)
    status = json.loads(daemon.cli("status", "--json").stdout)
    assert status["outbox"].get("pending", 0) == 0
