"""The daemon and the demo as a sysadmin and a newcomer run them: real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from credmail.samples import SAMPLES, directory_csv
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import server_env, write_config

pytestmark = pytest.mark.e2e


def credmail(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "credmail", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def base_env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDMAIL_")}
    return {**env, "CREDMAIL_CONFIG": str(config)}


def sample(name: str) -> bytes:
    return next(s for s in SAMPLES if s.name == name).to_bytes()


def test_daemon_answers_over_idle_and_stops_cleanly(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp_path: Path
) -> None:
    settings = server_env(
        dovecot,
        smtp,
        sqlite_url,
        mailbox__process_existing="false",
        mailbox__poll_interval_seconds="600",
    )  # only IDLE can wake it
    env = base_env(write_config(tmp_path / "credmail.toml", settings))
    csv = tmp_path / "directory.csv"
    csv.write_bytes(directory_csv(date.today()))
    assert credmail("directory", "import", str(csv), env=env).returncode == 0
    dovecot.append(sample("teacher"))  # backlog before the first start: left alone

    log_path = tmp_path / "daemon.log"
    with log_path.open("w") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "credmail", "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        assert wait_for(lambda: "mailbox.first_start" in log_path.read_text(), 30)
        time.sleep(0.5)  # let it enter IDLE
        dovecot.append(sample("ordinary-mail"))
        dovecot.append(sample("adult-guardian"))
        assert wait_for(lambda: len(smtp.handler.messages) == 1, 30), log_path.read_text()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
    finally:
        if daemon.poll() is None:
            os.kill(daemon.pid, signal.SIGKILL)
            daemon.wait()

    (reply,) = smtp.handler.parsed()
    assert reply["To"] == "mario.rossi@example.org"
    inbox = dovecot.folder_messages("INBOX")
    assert len(inbox) == 2  # the backlog request and the ordinary mail
    assert all(b"\\Seen" not in data[b"FLAGS"] for data in inbox.values())
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    handled = [line for line in lines if line["event"] == "message.handled"]
    assert [h["outcome"] for h in handled] == ["answered"]
    assert any(line["event"] == "daemon.stopped" for line in lines)
    text = log_path.read_text()
    assert "mario.rossi@example.org" not in text and "/reset/" not in text


def test_config_error_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "credmail.toml"
    config.write_text('[smtp]\nhost = "smtp.example.org"\nprot = 25\n')
    result = credmail("run", env=base_env(config), timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip() == "credmail: config error: smtp.prot: unknown key"


def test_demo_runs_every_case(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDMAIL_")}
    result = credmail("demo", "--workdir", str(tmp_path / "demo"), env=env)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    for case in SAMPLES:
        assert case.expected in rows[case.name].split(), rows[case.name]
        if case.reply:
            assert case.reply in rows[case.name]
    sent = list((tmp_path / "demo" / "sent").glob("*.eml"))
    assert len(sent) == sum(1 for case in SAMPLES if case.reply)


def test_daemon_polls_when_idle_is_off(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp_path: Path
) -> None:
    settings = server_env(
        dovecot, smtp, sqlite_url, mailbox__use_idle="false", mailbox__poll_interval_seconds="1"
    )
    env = base_env(write_config(tmp_path / "credmail.toml", settings))
    csv = tmp_path / "directory.csv"
    csv.write_bytes(directory_csv(date.today()))
    assert credmail("directory", "import", str(csv), env=env).returncode == 0
    daemon = subprocess.Popen(
        [sys.executable, "-m", "credmail", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        dovecot.append(sample("teacher"))
        assert wait_for(lambda: len(smtp.handler.messages) == 1, 30)
        daemon.send_signal(signal.SIGINT)
        assert daemon.wait(timeout=10) == 0
    finally:
        if daemon.poll() is None:
            os.kill(daemon.pid, signal.SIGKILL)
            daemon.wait()
