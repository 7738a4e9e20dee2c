"""SIGKILL the daemon five times during a campaign (and repeat `campaign start` between
kills): afterwards every planned (address, student) link reached the SMTP server in
exactly one distinct Message-ID, and none is missing. A kill between the server
accepting a mail and the row being marked sent may resend it with the same Message-ID;
such resends are counted and reported."""

from __future__ import annotations

import json
import os
import random
import time
from datetime import date
from pathlib import Path

import pytest

from tests.integration.test_campaign import TEACHERS, campaign_mails, links_by_pair
from tests.support.campaign_data import school_year
from tests.support.daemon import Daemon, wait_for
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import server_env

pytestmark = pytest.mark.e2e

KILLS = 5


def test_sigkill_during_a_campaign_sends_each_link_exactly_once(
    dovecot: Dovecot, smtp: SmtpServer, tmp_path: Path
) -> None:
    year = school_year(60, 130)
    env = server_env(
        dovecot,
        smtp,
        f"sqlite:///{tmp_path / 'credmail.db'}",
        smtp__max_per_second="12",  # 102 mails take about 9 s: the kills land mid-campaign
        smtp__retry_base_seconds="1",
        campaign__tick_seconds="0.5",
        campaign__batch_size="10",
        daemon__outbox_interval_seconds="1",
        mailbox__poll_interval_seconds="2",
    )
    daemon = Daemon(tmp_path, env)
    people = tmp_path / "people.csv"
    people.write_bytes(year.csv(date.today(), TEACHERS))
    assert daemon.cli("directory", "import", str(people)).returncode == 0
    started = daemon.cli("campaign", "start", "settembre")
    assert started.returncode == 0, started.stderr

    def status() -> dict[str, object]:
        done = daemon.cli("campaign", "status", "settembre", "--json")
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    def distinct_ids() -> set[str]:
        return {str(m["Message-ID"]) for m in campaign_mails(smtp)}

    rng = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
    mid_campaign = 0
    for _ in range(KILLS):
        daemon.start()
        time.sleep(rng.uniform(1.5, 3.0))
        daemon.kill()
        mid_campaign += len(distinct_ids()) < year.expected_mails()
        again = daemon.cli("campaign", "start", "settembre")  # a repeated start adds nothing
        assert again.returncode == 0 and "already exists" in again.stdout
    daemon.start()
    try:
        everything = lambda: len(distinct_ids()) >= year.expected_mails()  # noqa: E731
        assert wait_for(everything, 120, step=0.2), daemon.text()[-3000:]
        time.sleep(1.0)  # anything still to come (a resend) arrives now
        assert daemon.stop() == 0
    finally:
        daemon.kill()

    found = links_by_pair(smtp)
    assert set(found) == year.expected_pairs()  # none lost, none extra
    assert all(len(ids) == 1 for ids in found.values())  # one distinct Message-ID each
    distinct = distinct_ids()
    assert len(distinct) == year.expected_mails()
    resends = len(campaign_mails(smtp)) - len(distinct)
    final = status()
    assert final["status"] == "done"
    assert final["counts"] == {"sent": len(year.expected_pairs())}
    print(
        f"\ncampaign crash test: {KILLS} SIGKILLs ({mid_campaign} mid-campaign), "
        f"{len(distinct)} mails for {len(found)} links, {resends} resend(s) "
        "with the same Message-ID"
    )
