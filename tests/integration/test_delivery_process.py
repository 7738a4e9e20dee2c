"""`credmail run --once` delivers from a forked process while it decides (issue 17.3).

Real Dovecot, aiosmtpd and databases; credmail runs as its own process, as in production
(the test process has aiosmtpd's thread, so an in-process run may not fork). The first
replies leave before the last request is decided; every request gets one reply; a run
killed halfway loses nothing (its delivery process finishes and exits by itself); and
where forking is not safe the run delivers after deciding, as before.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from credmail.entrypoints.daemon import run_once
from credmail.runners.delivery_process import DeliveryProcess
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import make_app, server_env, server_settings, write_config

pytestmark = pytest.mark.integration

REQUESTS = 60


def teacher(i: int) -> str:
    return f"docente{i}@example.org"


def prepare(dovecot: Dovecot, smtp: SmtpServer, db_url: str, tmp_path: Path) -> dict[str, str]:
    settings = server_env(dovecot, smtp, db_url, mailbox__batch_size="10", logging__format="json")
    config = write_config(tmp_path / "credmail.toml", settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDMAIL_")}
    env["CREDMAIL_CONFIG"] = str(config)
    rows = ["role,username,first_name,last_name,birth_date,emails,students,class"]
    rows += [f"teacher,T{i:03d},Nome{i},Cognome{i},,{teacher(i)},," for i in range(REQUESTS)]
    people = tmp_path / "people.csv"
    people.write_text("\n".join(rows) + "\n")
    credmail(env, "directory", "import", str(people))
    with dovecot.client() as client:
        client.multiappend("INBOX", [request(teacher(i)) for i in range(REQUESTS)])
    return env


def credmail(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "credmail", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True, timeout=120)


def events(log: str, name: str) -> list[str]:
    """The timestamps of one event in a JSON log, in order."""
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [line["timestamp"] for line in lines if line["event"] == name]


def answered(smtp: SmtpServer) -> dict[str, set[str]]:
    """Per request (In-Reply-To), the distinct Message-IDs of the replies it got."""
    replies: dict[str, set[str]] = {}
    for msg in smtp.handler.parsed():
        replies.setdefault(str(msg["In-Reply-To"]), set()).add(str(msg["Message-ID"]))
    return replies


def test_replies_leave_while_the_backlog_is_decided(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, tmp_path: Path
) -> None:
    env = prepare(dovecot, smtp, db_url, tmp_path)
    run = credmail(env, "run", "--once", "--json")
    summary = json.loads(run.stdout)
    assert summary["sent"] == REQUESTS  # counted by the delivery process, reported here
    replies = answered(smtp)
    assert len(replies) == REQUESTS and all(len(ids) == 1 for ids in replies.values())
    decided, sent = events(run.stderr, "message.handled"), events(run.stderr, "outbox.sent")
    assert len(decided) == REQUESTS and len(sent) == REQUESTS
    assert min(sent) < max(decided), "no reply left before the last request was decided"


def test_a_run_killed_halfway_loses_nothing(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, tmp_path: Path
) -> None:
    env = prepare(dovecot, smtp, db_url, tmp_path)
    command = [sys.executable, "-m", "credmail", "run", "--once"]
    run = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    assert run.stderr is not None
    for line in run.stderr:  # kill the deciding process once replies are leaving
        if '"outbox.sent"' in line:
            os.kill(run.pid, signal.SIGKILL)
            break
    rest = finished(run.stderr)  # EOF: the delivery process (sharing stderr) exited too
    run.stderr.close()
    assert run.wait(timeout=10) == -signal.SIGKILL
    assert rest is not None, "the delivery process outlived its parent"
    assert len(answered(smtp)) < REQUESTS  # the kill left work for the next run
    credmail(env, "run", "--once")
    replies = answered(smtp)
    assert len(replies) == REQUESTS
    assert all(len(ids) == 1 for ids in replies.values()), "a request got two different replies"


def finished(stream: object, timeout: float = 30) -> str | None:
    """The rest of a pipe once every writer closed it, or None after `timeout` seconds."""
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(stream.read()), daemon=True)  # type: ignore[attr-defined]
    reader.start()
    reader.join(timeout)
    return result[0] if result else None


def test_where_it_may_not_fork_delivery_follows(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str
) -> None:
    """aiosmtpd's thread runs in this process: forking here is refused, the run is as before."""
    app = make_app(server_settings(dovecot, smtp, sqlite_url))
    assert threading.active_count() > 1
    assert DeliveryProcess.start(app.delivery, app.engine) is None
    dovecot.append(request("mario.rossi@example.org"))  # on file in make_app's directory
    assert run_once(app, deliver_alongside=True)["sent"] == 1
    assert len(answered(smtp)) == 1
