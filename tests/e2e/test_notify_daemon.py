"""The digest and an alert from a real `credmail run`, killed with SIGKILL at random
moments and restarted: each slot's mail reaches the SMTP server exactly once (a kill
between the server's answer and the sent mark may resend it with the same Message-ID,
the outbox's documented window), and the notifications table holds the slot once."""

from __future__ import annotations

import os
import random
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from credmail.bootstrap import bootstrap
from credmail.config import load_settings
from tests.support.daemon import Daemon, wait_for
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import server_env

pytestmark = pytest.mark.e2e

KILLS = 6
STAFF = ("segreteria.interna@istitutostanga.edu.it", "vicepreside@istitutostanga.edu.it")
ADMIN = "sistemista@istitutostanga.edu.it"


def notify_env(dovecot: Dovecot, smtp: SmtpServer, db_url: str) -> dict[str, str]:
    return server_env(
        dovecot,
        smtp,
        db_url,
        notify__staff='["' + '", "'.join(STAFF) + '"]',
        notify__admin=f'["{ADMIN}"]',
        notify__digest_at='["00:00"]',  # today's slot has always come
        notify__digest_days='["mon", "tue", "wed", "thu", "fri", "sat", "sun"]',
        notify__tick_seconds="0.2",
        daemon__outbox_interval_seconds="1",
        smtp__retry_base_seconds="1",
        mailbox__poll_interval_seconds="2",
        logging__level="debug",
        logging__format="json",
    )


def ids_by_recipient(smtp: SmtpServer, subject: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for msg in smtp.handler.parsed():
        if subject in str(msg["Subject"]):
            found[str(msg["To"])].append(str(msg["Message-ID"]))
    return found


def started(daemon: Daemon) -> None:
    """Start it and wait until it runs (its signal handlers are in place)."""
    before = len(daemon.events("daemon.started"))
    daemon.start()
    assert wait_for(lambda: len(daemon.events("daemon.started")) > before, 60)


def test_digest_and_alert_exactly_once_across_sigkills_and_a_restart(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, tmp_path: Path
) -> None:
    env = notify_env(dovecot, smtp, db_url)
    daemon = Daemon(tmp_path, env)
    daemon.import_directory()
    dovecot.append(request("sconosciuto@example.net"))
    assert daemon.cli("run", "--once").returncode == 0  # a review item waits
    app = bootstrap(load_settings(Path(daemon.env["CREDMAIL_CONFIG"]), environ={}))
    with app.uow() as uow:
        uow.breaker.trip(datetime.now(UTC), "test")  # a state needing a person
        uow.commit()
    app.close()
    rng = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
    for _ in range(KILLS):
        daemon.start()
        time.sleep(rng.uniform(0.5, 2.5))
        daemon.kill()
    try:
        started(daemon)
        assert wait_for(lambda: len(ids_by_recipient(smtp, "Da fare in segreteria")) == 2, 60)
        assert wait_for(lambda: len(ids_by_recipient(smtp, "[credmail] Problema")) == 1, 60)
        assert daemon.stop() == 0  # a restart: the slot and the alert are done
        checked = len(daemon.events("notify.checked"))
        started(daemon)
        assert wait_for(lambda: len(daemon.events("notify.checked")) >= checked + 5, 60)
        time.sleep(1.5)  # anything still to come (a resend) arrives now
        assert daemon.stop() == 0
    finally:
        daemon.kill()

    digests = ids_by_recipient(smtp, "Da fare in segreteria: 1 richiesta da rivedere")
    assert sorted(digests) == sorted(STAFF), daemon.text()[-3000:]
    assert all(len(set(ids)) == 1 for ids in digests.values())
    alerts = ids_by_recipient(smtp, "[credmail] Problema: il limite orario globale")
    assert list(alerts) == [ADMIN] and len(set(alerts[ADMIN])) == 1
    today = datetime.now(ZoneInfo("Europe/Rome")).date().isoformat()
    engine = create_engine(db_url)
    with engine.connect() as conn:
        slots = conn.execute(text("SELECT kind, slot, mails FROM notifications")).all()
        unsent = conn.scalar(text("SELECT COUNT(*) FROM outbox WHERE status != 'sent'"))
    engine.dispose()
    assert sorted(tuple(row) for row in slots) == [
        ("alert", "breaker#1", 1),
        ("digest", f"{today} 00:00", 2),
    ]
    assert unsent == 0
    resends = sum(len(ids) - 1 for ids in [*digests.values(), *alerts.values()])
    print(f"\nnotify crash test: {KILLS} SIGKILLs, {resends} resend(s) with the same Message-ID")


def test_a_real_daemon_alerts_when_the_mailbox_stops_and_when_it_is_back(
    dovecot: Dovecot, smtp: SmtpServer, tmp_path: Path
) -> None:
    env = notify_env(dovecot, smtp, f"sqlite:///{tmp_path / 'credmail.db'}")
    env |= {
        "CREDMAIL_NOTIFY__STAFF": "[]",
        "CREDMAIL_NOTIFY__MAILBOX_DOWN_MINUTES": "0.05",  # 3 s without a successful sync
        "CREDMAIL_MAILBOX__POLL_INTERVAL_SECONDS": "1",
    }
    daemon = Daemon(tmp_path, env)
    daemon.import_directory()
    try:
        started(daemon)
        assert wait_for(lambda: bool(daemon.events("notify.checked")), 30)
        dovecot.stop()
        try:
            assert wait_for(lambda: len(ids_by_recipient(smtp, "[credmail] Problema")) == 1, 60)
        finally:
            dovecot.start()
        # the watcher reconnects on its backoff (doubling while the server was away)
        assert wait_for(lambda: len(ids_by_recipient(smtp, "[credmail] Risolto")) == 1, 300)
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    (begun,) = [m for m in smtp.handler.parsed() if "Problema" in str(m["Subject"])]
    assert str(begun["Subject"]) == (
        "[credmail] Problema: la casella della segreteria non risponde - Istituto Stanga"
    )
    assert str(begun["To"]) == ADMIN
    assert len(smtp.handler.messages) == 2  # one when it began, one when it ended
