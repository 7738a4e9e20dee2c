"""Settings and helpers that point credmail at the test servers."""

from __future__ import annotations

import re
from datetime import date
from email.message import EmailMessage
from pathlib import Path

from credmail.adapters.db.directory_import import import_records
from credmail.adapters.db.engine import upgrade
from credmail.bootstrap import App, bootstrap
from credmail.config import Settings, load_settings
from credmail.samples import AUTHSERV_ID, directory_csv
from credmail.service.directory_csv import read_directory
from credmail.service.ports import Clock
from tests.support.servers import IMAP_PASSWORD, IMAP_USER, Dovecot, SmtpServer

# The school's identity has no default: every settings builder sets it explicitly.
IDENTITY = {
    "CREDMAIL_SMTP__FROM_ADDRESS": "segreteria@istitutostanga.edu.it",
    "CREDMAIL_REPLIES__SCHOOL_NAME": "Istituto Stanga",
    "CREDMAIL_LINKS__BASE_URL": "https://registro.istitutostanga.edu.it",
}


def server_env(dovecot: Dovecot, smtp: SmtpServer, db_url: str, **extra: str) -> dict[str, str]:
    env = {
        **IDENTITY,
        "CREDMAIL_MAILBOX__HOST": "127.0.0.1",
        "CREDMAIL_MAILBOX__PORT": str(dovecot.port),
        "CREDMAIL_MAILBOX__SECURITY": "none",
        "CREDMAIL_MAILBOX__USERNAME": IMAP_USER,
        "CREDMAIL_MAILBOX__PASSWORD": IMAP_PASSWORD,
        "CREDMAIL_MAILBOX__PROCESS_EXISTING": "true",
        "CREDMAIL_SMTP__HOST": "127.0.0.1",
        "CREDMAIL_SMTP__PORT": str(smtp.port),
        "CREDMAIL_SMTP__SECURITY": "none",
        "CREDMAIL_SMTP__RETRY_BASE_SECONDS": "60",
        "CREDMAIL_DATABASE__URL": db_url,
        "CREDMAIL_PRIVACY__LOG_KEY": "test-log-key",
        "CREDMAIL_AUTH__TRUSTED_AUTHSERV_IDS": f'["{AUTHSERV_ID}"]',
    }
    env.update({f"CREDMAIL_{key.upper()}": value for key, value in extra.items()})
    return env


def server_settings(dovecot: Dovecot, smtp: SmtpServer, db_url: str, **extra: str) -> Settings:
    return load_settings(None, environ=server_env(dovecot, smtp, db_url, **extra))


STARTED: list[App] = []


def dispose_apps() -> None:
    """Close every engine the test opened (called by an autouse fixture)."""
    while STARTED:
        STARTED.pop().engine.dispose()


def make_app(settings: Settings, clock: Clock | None = None, directory: bool = True) -> App:
    app = bootstrap(settings, clock=clock) if clock else bootstrap(settings)
    STARTED.append(app)
    upgrade(app.engine)
    if directory:
        with app.uow() as uow:
            import_records(uow.session, read_directory(directory_csv(date.today())), prune=False)
            uow.commit()
    return app


def sync_inbox(app: App) -> None:
    """Decide what is in the watched folder now, over a source of its own (no delivery)."""
    source = app.source_factory()
    try:
        app.pipeline.sync(source)
    finally:
        source.close()


def body_text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def link_in(msg: EmailMessage) -> str:
    found = re.search(r"https://\S+/reset/\S+", body_text(msg))
    assert found, "no link in the reply"
    return found.group(0)


def write_config(path: Path, env: dict[str, str]) -> Path:
    """Turn CREDMAIL_SECTION__KEY values into a TOML file, as a sysadmin would write it."""
    sections: dict[str, dict[str, str]] = {}
    for name, value in env.items():
        section, key = name.removeprefix("CREDMAIL_").lower().split("__", 1)
        sections.setdefault(section, {})[key] = value
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {_toml(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value: str) -> str:
    if value.isdigit() or value in {"true", "false"} or value.startswith("["):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
