"""The Maildir source, template overrides and the template link issuer."""

from __future__ import annotations

from pathlib import Path

import pytest

from credmail.entrypoints.cli import main
from credmail.entrypoints.daemon import run_once
from credmail.samples import SAMPLES
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import IDENTITY, body_text, make_app, server_settings, write_config

pytestmark = pytest.mark.integration


def sample(name: str) -> bytes:
    return next(s for s in SAMPLES if s.name == name).to_bytes()


def maildir(root: Path, *names: str) -> dict[str, Path]:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    paths = {}
    for number, name in enumerate(names):
        path = root / "new" / f"17000000{number:02d}.test{number}.host"
        path.write_bytes(sample(name))
        paths[name] = path
    return paths


def test_maildir_source_moves_requests_and_leaves_the_rest(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "Maildir"
    settings = server_settings(
        dovecot, smtp, sqlite_url, mailbox__kind="maildir", mailbox__maildir_path=str(root)
    )
    paths = maildir(root, "adult-guardian", "ordinary-mail", "unknown-sender")
    before = paths["ordinary-mail"].read_bytes()

    result = run_once(make_app(settings))

    assert result["handled"] == {"answered": 1, "review": 1}
    assert paths["ordinary-mail"].read_bytes() == before  # same name, same place, same bytes
    assert (root / ".Credenziali.Evase" / "new" / paths["adult-guardian"].name).exists()
    assert (root / ".Credenziali.Revisione" / "new" / paths["unknown-sender"].name).exists()
    assert run_once(make_app(settings, directory=False))["handled"] == {}


def test_maildir_first_start_skips_the_backlog(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "Maildir"
    settings = server_settings(
        dovecot,
        smtp,
        sqlite_url,
        mailbox__kind="maildir",
        mailbox__maildir_path=str(root),
        mailbox__process_existing="false",
    )
    maildir(root, "adult-guardian")
    app = make_app(settings)
    assert run_once(app)["handled"] == {}
    (root / "new" / "1800000000.later.host").write_bytes(sample("teacher"))
    assert run_once(app)["handled"] == {"answered": 1}
    assert [m["To"] for m in smtp.handler.parsed()] == ["g.esposito@example.org"]


def test_school_overrides_a_template(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "link_adult.txt.j2").write_text(
        '{%- set subject = "Accesso al registro" -%}\n'
        "Codice {{ username }}, link {{ link }} - {{ school_name }}\n"
    )
    settings = server_settings(
        dovecot,
        smtp,
        sqlite_url,
        replies__templates_dir=str(templates),
        replies__school_name="Liceo Prova",
    )
    dovecot.append(sample("adult-guardian"))
    dovecot.append(sample("minor-own-address"))
    run_once(make_app(settings))
    by_to = {str(m["To"]): m for m in smtp.handler.parsed()}
    custom = by_to["mario.rossi@example.org"]
    assert custom["Subject"] == "Accesso al registro"
    assert body_text(custom).startswith("Codice G1001, link https://")
    assert "Liceo Prova" in body_text(custom)
    assert "CIE" in body_text(by_to["sara.verdi@studenti.example.org"])  # built-in kept


def test_broken_template_override_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "minor_procedure.txt.j2").write_text("{% if %}\n")
    config = write_config(
        tmp_path / "credmail.toml",
        {
            **IDENTITY,
            "CREDMAIL_REPLIES__TEMPLATES_DIR": str(templates),
            "CREDMAIL_DATABASE__URL": f"sqlite:///{tmp_path / 'x.db'}",
        },
    )
    assert main(["--config", str(config), "check-config"]) == 2
    assert "replies.templates_dir: minor_procedure.txt.j2:" in capsys.readouterr().err


def test_template_link_issuer(dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str) -> None:
    settings = server_settings(
        dovecot,
        smtp,
        sqlite_url,
        links__issuer="template",
        links__url_template="https://register.example/reset?u={username}",
    )
    dovecot.append(sample("student-one-child"))
    run_once(make_app(settings))
    (reply,) = smtp.handler.parsed()
    assert "https://register.example/reset?u=S2001" in body_text(reply)
    assert "scade" not in body_text(reply)  # no expiry to announce
