"""`credmail tasks list` and `credmail tasks done`: the secretariat works the worklist, and
the person is told by mail (written as .eml by the file sender)."""

from __future__ import annotations

import asyncio
import json
import os
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from credmail.config import load_settings
from credmail.entrypoints.cli import main
from tests.support.links import issue_token
from tests.support.wiring import body_text, make_app, write_config
from tests.web.conftest import web_env

pytestmark = pytest.mark.integration  # a real database (SQLite, PostgreSQL)


def test_tasks_list_and_done_tell_the_person(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outbox = tmp_path / "sent"
    env = web_env(db_url, smtp__outbox_dir=str(outbox))
    for name in list(os.environ):
        if name.startswith("CREDMAIL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CREDMAIL_CONFIG", str(write_config(tmp_path / "credmail.toml", env)))
    monkeypatch.setenv("SUDO_USER", "maria.rossi")
    app = make_app(load_settings(None, environ=env))
    for username in ("G1001", "T3001"):
        assert app.desks.reset.spend(issue_token(app, username)).task_id is not None

    def cli(*args: str, expect: int = 0) -> str:
        code = main(list(args))
        out, err = capsys.readouterr()
        assert code == expect, err
        return out + err

    listed = json.loads(cli("tasks", "list", "--json"))
    assert [(t["username"], t["status"]) for t in listed] == [("G1001", "open"), ("T3001", "open")]
    assert listed[0]["address"] == "mario.rossi@example.org" and listed[0]["confirmed_at"]
    text = cli("tasks", "list")
    assert "da eseguire" in text and "Rossi Mario (genitore/tutore)" in text
    assert " alle " in text and "CET" not in text  # Italian times
    first = listed[0]["id"]
    note, message = ("inviate da ClasseViva alle 10", "Controlli anche la posta indesiderata.")
    shown = cli("tasks", "done", str(first), "--note", note, "--message", message, expect=1)
    assert "Oggetto: Credenziali inviate dal Registro Elettronico" in shown
    assert message in shown and f"Nota interna (non inviata): {note}" in shown
    assert "niente è stato fatto" in shown and "--confirm" in shown
    assert [t["status"] for t in json.loads(cli("tasks", "list", "--json"))] == ["open", "open"]
    said = cli("tasks", "done", str(first), "--note", note, "--message", message, "--confirm")
    assert f"attività {first} (G1001) segnata come eseguita" in said
    assert "credmail: l'attività" in cli("tasks", "done", str(first), expect=1)
    assert "nessuna attività con numero 999" in cli("tasks", "done", "999", expect=1)
    assert [t["username"] for t in json.loads(cli("tasks", "list", "--json"))] == ["T3001"]
    every = json.loads(cli("tasks", "list", "--all", "--json"))
    assert every[0]["done_by"] == "maria.rossi (cli)" and every[0]["status"] == "done"
    assert every[0]["note"] == note
    asyncio.run(app.delivery.drain())  # what the daemon's outbox worker does next
    sent = sorted(outbox.glob("*.eml"))
    assert sent, "the mail to the person went out"
    mail = message_from_bytes(sent[0].read_bytes(), policy=policy.default)
    assert isinstance(mail, EmailMessage)
    assert mail["To"] == "mario.rossi@example.org"
    assert "Credenziali inviate dal Registro Elettronico" in str(mail["Subject"])
    assert message in body_text(mail)
    assert note not in body_text(mail)  # the internal note stays with the task
    assert "Gentile Mario Rossi" in body_text(mail)


def test_credmail_web_refuses_a_missing_database_and_an_unavailable_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("CREDMAIL_"):
            monkeypatch.delenv(name)
    db = tmp_path / "none.db"
    config = write_config(tmp_path / "credmail.toml", web_env(f"sqlite:///{db}"))
    assert main(["--config", str(config), "web"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["--config", str(config), "web", "--listen", "nowhere"]) == 2
    assert "--listen: expected host:port" in capsys.readouterr().err
    assert not db.exists()
    env = web_env(f"sqlite:///{db}", links__backend="ldap")
    config = write_config(tmp_path / "ldap.toml", env)
    assert main(["--config", str(config), "web"]) == 2  # named before anything starts
    err = capsys.readouterr().err
    assert "config error" in err and "ldap" in err
