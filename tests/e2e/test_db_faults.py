"""PostgreSQL restarted under the running daemon: it survives and carries on."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.daemon import Daemon, wait_for
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import server_env

pytestmark = pytest.mark.e2e


def restart_postgres() -> None:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
    pg_ctlcluster = shutil.which("pg_ctlcluster")
    assert pg_ctlcluster and versions, "PostgreSQL cluster tools are needed for this test"
    subprocess.run(
        [pg_ctlcluster, "--skip-systemctl-redirect", versions[-1], "main", "restart"],
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_postgres_restart_mid_run(dovecot: Dovecot, smtp: SmtpServer, tmp_path: Path) -> None:
    from tests.conftest import _reset_postgres

    settings = server_env(
        dovecot,
        smtp,
        _reset_postgres(),
        mailbox__poll_interval_seconds="2",
        daemon__outbox_interval_seconds="1",
    )
    daemon = Daemon(tmp_path, settings)
    daemon.import_directory()
    daemon.start()
    try:
        dovecot.append(request("mario.rossi@example.org"))
        assert wait_for(lambda: len(smtp.handler.messages) == 1, 20), daemon.text()[-2000:]
        restart_postgres()
        dovecot.append(request("g.esposito@example.org"))
        dovecot.append(request("davide.neri@example.org"))
        assert wait_for(lambda: len(smtp.handler.messages) == 3, 60), daemon.text()[-3000:]
        time.sleep(1)
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    targets = [rcpt for _f, rcpts, _raw in smtp.handler.messages for rcpt in rcpts]
    assert sorted(targets) == [
        "davide.neri@example.org",
        "g.esposito@example.org",
        "mario.rossi@example.org",
    ]
