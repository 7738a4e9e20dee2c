"""Outbound pacing on real aiosmtpd and both databases: spacing, a quota reply pausing the
whole outbox, and a request's reply overtaking a long queue of other mail."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from credmail.adapters.db.directory_import import import_records
from credmail.adapters.db.models import OutboxRow
from credmail.bootstrap import App
from credmail.entrypoints.cli import main
from credmail.service.directory_csv import read_directory
from tests.e2e.test_crash import directory, request
from tests.support.servers import Dovecot, RecordingHandler, SmtpServer
from tests.support.wiring import make_app, server_env, server_settings, sync_inbox, write_config

pytestmark = pytest.mark.integration


class TimedHandler(RecordingHandler):
    """Notes when each DATA arrived; can refuse the next few with a given reply."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []
        self.attempts = 0
        self.refusals = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        if self.refusals and self.refuse_with:
            self.refusals -= 1
            return self.refuse_with
        self.arrivals.append(time.monotonic())
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def timed_smtp() -> Any:
    server = SmtpServer(handler=TimedHandler()).start()
    yield server
    server.stop()


def handler(smtp: SmtpServer) -> TimedHandler:
    assert isinstance(smtp.handler, TimedHandler)
    return smtp.handler


def with_teachers(app: App, tmp_path: Path) -> App:
    with app.uow() as uow:
        rows = read_directory(directory(tmp_path / "dir.csv").read_bytes())
        import_records(uow.session, rows, prune=False)
        uow.commit()
    return app


def test_pacing_spaces_100_replies_as_configured(
    dovecot: Dovecot, timed_smtp: SmtpServer, db_url: str, tmp_path: Path
) -> None:
    settings = server_settings(dovecot, timed_smtp, db_url, smtp__max_per_second="20")
    app = with_teachers(make_app(settings, directory=False), tmp_path)
    for i in range(100):
        dovecot.append(request(i))
    sync_inbox(app)
    stats = asyncio.run(app.delivery.drain())
    arrivals = handler(timed_smtp).arrivals
    assert stats.sent == len(arrivals) == 100
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.045  # 1/20 s, less the clock's grain
    assert arrivals[-1] - arrivals[0] >= 99 * 0.05 - 0.05


def test_a_quota_reply_pauses_the_whole_outbox_until_the_window_passes(
    dovecot: Dovecot,
    timed_smtp: SmtpServer,
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = server_env(dovecot, timed_smtp, db_url, smtp__quota_pause_seconds="3")
    app = with_teachers(
        make_app(
            server_settings(dovecot, timed_smtp, db_url, smtp__quota_pause_seconds="3"),
            directory=False,
        ),
        tmp_path,
    )
    smtp = handler(timed_smtp)
    smtp.refuse_with = "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"
    smtp.refusals = 1
    for i in range(3):
        dovecot.append(request(i))
    sync_inbox(app)
    paused_at = time.monotonic()
    first = asyncio.run(app.delivery.drain())
    assert (first.sent, smtp.attempts) == (0, 1)  # the others were not tried
    assert asyncio.run(app.delivery.drain()).sent == 0 and smtp.attempts == 1

    config = write_config(tmp_path / "credmail.toml", env)
    assert main(["--config", str(config), "outbox", "list"]) == 0
    assert "outbox paused until" in capsys.readouterr().out
    main(["--config", str(config), "status"])
    assert "outbox paused until" in capsys.readouterr().out

    time.sleep(max(0.0, 3.1 - (time.monotonic() - paused_at)))
    assert asyncio.run(app.delivery.drain()).sent == 3
    with app.uow() as uow:
        assert uow.outbox.counts() == {"sent": 3}


def test_a_requests_reply_overtakes_500_other_mails(
    dovecot: Dovecot, timed_smtp: SmtpServer, db_url: str, tmp_path: Path
) -> None:
    settings = server_settings(dovecot, timed_smtp, db_url, smtp__max_per_second="100")
    app = with_teachers(make_app(settings, directory=False), tmp_path)
    now = datetime.now(UTC)
    with app.engine.begin() as conn:
        conn.execute(
            insert(OutboxRow),
            [
                {
                    "message_id": f"<other{i}@istitutostanga.edu.it>",
                    "template": "acknowledge_unknown",
                    "recipient": f"someone{i}@example.net",
                    "envelope_from": "segreteria@istitutostanga.edu.it",
                    "raw": b"Subject: altro\r\n\r\nx\r\n",
                    "status": "pending",
                    "attempts": 0,
                    "created_at": now,
                    "next_attempt_at": now,
                }
                for i in range(500)
            ],
        )
    drain = threading.Thread(target=lambda: asyncio.run(app.delivery.drain()))
    drain.start()
    time.sleep(0.5)  # the queue is being worked when the request comes in
    dovecot.append(request(7))
    sync_inbox(app)
    drain.join(timeout=60)
    sent = [to for _from, (to,), _raw in handler(timed_smtp).messages]
    assert len(sent) == 501
    position = sent.index("docente7@example.org")
    assert position < 150, position  # not behind the 500 (at 100/s it waited < 1.5 s)


def test_the_daily_quota_frees_up_a_day_after_the_oldest_counted_mail(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """The store finds the n-th latest send in the database (one row, not the whole day)."""
    from datetime import timedelta

    from credmail.adapters.db.pacing_store import SqlPacingStore
    from credmail.service.pacing import Pacer, PacingLimits

    app = make_app(server_settings(dovecot, smtp, db_url), directory=False)
    now = datetime.now(UTC).replace(microsecond=0)
    sent = [now - timedelta(hours=hours) for hours in (30, 20, 10, 1)]
    with app.engine.begin() as conn:
        conn.execute(
            insert(OutboxRow),
            [
                {
                    "message_id": f"<sent{i}@istitutostanga.edu.it>",
                    "template": "link_adult",
                    "recipient": None,
                    "envelope_from": "segreteria@istitutostanga.edu.it",
                    "status": "sent",
                    "attempts": 1,
                    "created_at": moment,
                    "next_attempt_at": moment,
                    "sent_at": moment,
                }
                for i, moment in enumerate(sent)
            ],
        )
    store = SqlPacingStore(app.engine)
    assert store.nth_latest_sent(1) == sent[-1] and store.nth_latest_sent(5) is None
    assert Pacer(PacingLimits(per_day=3), store).next_send_at(now) == sent[1] + timedelta(days=1)
    assert Pacer(PacingLimits(per_day=4), store).next_send_at(now) == now  # one is a day old
