"""Crash anywhere: SIGKILL the daemon at random moments through a 300-request backlog.

Afterwards every request has exactly one decision and exactly one distinct reply
Message-ID reached the SMTP server. A kill between the server accepting a reply and the
outbox row being marked sent may cause a resend with the same Message-ID; the count of
such resends is reported.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from credmail.samples import AUTHSERV_ID
from tests.support.daemon import Daemon, wait_for
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import server_env

pytestmark = pytest.mark.e2e

REQUESTS = 300
ORDINARY = 30
KILLS = 12


def directory(path: Path) -> Path:
    rows = ["role,username,first_name,last_name,birth_date,emails,students,class"]
    rows += [
        f"teacher,T{i:04d},Nome{i},Cognome{i},,docente{i}@example.org,," for i in range(REQUESTS)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def request(i: int) -> bytes:
    msg = EmailMessage()
    msg["Authentication-Results"] = f"{AUTHSERV_ID}; dmarc=pass header.from=example.org"
    msg["From"] = f"docente{i}@example.org"
    msg["Subject"] = "Richiesta credenziali"
    msg["Message-ID"] = make_msgid(idstring=f"req{i}", domain="example.org")
    msg.set_content("Buongiorno.")
    return msg.as_bytes()


def ordinary(i: int) -> bytes:
    return f"From: genitore{i}@example.org\r\nSubject: Orari {i}\r\n\r\nGrazie\r\n".encode()


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "credmail", "run"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def replies_by_request(smtp: SmtpServer) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for msg in smtp.handler.parsed():
        found[str(msg["In-Reply-To"]).strip()].append(str(msg["Message-ID"]).strip())
    return found


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    dovecot: Dovecot, smtp: SmtpServer, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'credmail.db'}"
    env_values = server_env(
        dovecot,
        smtp,
        db_url,
        mailbox__batch_size="20",
        mailbox__max_attempts="20",
        mailbox__poll_interval_seconds="2",
        daemon__outbox_interval_seconds="1",
        smtp__retry_base_seconds="1",
        limits__global_replies_per_hour="100000",
    )
    daemon = Daemon(tmp_path, env_values)
    assert (
        daemon.cli("directory", "import", str(directory(tmp_path / "people.csv"))).returncode == 0
    )
    with dovecot.client() as client:
        for i in range(REQUESTS):
            client.append("INBOX", request(i))
            if i % 10 == 0:
                client.append("INBOX", ordinary(i // 10))
    rng = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
    kills_mid_work = 0
    for _ in range(KILLS):
        daemon.start()
        time.sleep(rng.uniform(0.4, 1.6))
        kills_mid_work += len(smtp.handler.messages) < REQUESTS
        daemon.kill()
    daemon.start()
    try:
        wait_for(lambda: len(replies_by_request(smtp)) >= REQUESTS, 120, step=0.2)
        time.sleep(1.5)  # anything still to come (a resend) arrives now
        assert daemon.stop() == 0
    finally:
        daemon.kill()

    replies = replies_by_request(smtp)
    assert len(replies) == REQUESTS, daemon.text()[-3000:]
    assert all(len(set(ids)) == 1 for ids in replies.values())
    resends = sum(len(ids) - 1 for ids in replies.values())
    engine = create_engine(db_url)
    with engine.connect() as conn:
        decisions = conn.execute(
            text("SELECT message_id, COUNT(*), MIN(outcome) FROM ledger GROUP BY message_id")
        ).all()
        unsent = conn.scalar(text("SELECT COUNT(*) FROM outbox WHERE status != 'sent'"))
    engine.dispose()
    assert len(decisions) == REQUESTS
    assert all(count == 1 and outcome == "answered" for _mid, count, outcome in decisions)
    assert unsent == 0
    assert len(dovecot.folder_messages("Credenziali/Evase")) == REQUESTS
    inbox = dovecot.folder_messages("INBOX")
    assert len(inbox) == ORDINARY
    assert all(b"\\Seen" not in data[b"FLAGS"] for data in inbox.values())
    print(
        f"\ncrash test: {KILLS} SIGKILLs ({kills_mid_work} while replies were still due), "
        f"{REQUESTS} requests, {resends} resend(s) with the same Message-ID"
    )
