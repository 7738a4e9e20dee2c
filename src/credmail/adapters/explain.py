"""Expected failures worded for the sysadmin: one line naming what failed and what to check.

`explain` turns a connection, login, TLS, folder or database failure into that line (None
for anything else, which is a bug and keeps its traceback). It knows the adapters'
exceptions (imapclient, SQLAlchemy, ssl), so it lives with them; bootstrap hands it to the
entry points and the inbox watcher.
"""

from __future__ import annotations

import ast
import contextlib
import imaplib
import re
import socket
import ssl
from pathlib import Path

from imapclient.exceptions import LoginError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from credmail.adapters.db.engine import SchemaMissing
from credmail.config import Settings
from credmail.service.ports import SendError


def explain(exc: BaseException, settings: Settings | None = None) -> str | None:
    """One line for an expected failure, or None when it is not one."""
    if isinstance(exc, SchemaMissing):
        return f"{_database(settings)}: {_create_schema_advice(exc.schema, settings)}"
    if isinstance(exc, DBAPIError):
        missing = _missing_directory(settings)
        if missing is not None:
            return (
                f"{_database(settings)}: directory {missing} does not exist; create it for the"
                " service's user (install -d -m 0700 -o credmail -g credmail"
                f" {missing}) or check database.url"
            )
        return f"{_database(settings)}: {_first_line(exc.orig or exc)}; check database.url"
    if isinstance(exc, SendError):
        advice = "" if "smtp." in str(exc) else "; check the [smtp] settings"
        return f"{_smtp(settings)}: {exc}{advice}"
    reason = _reason(exc)
    return None if reason is None else f"{_mailbox(settings)}: {reason}"


def _reason(exc: BaseException) -> str | None:
    if isinstance(exc, LoginError):
        return (
            f"login refused ({_server_text(exc)}); check mailbox.username and mailbox.password_file"
        )
    if isinstance(exc, imaplib.IMAP4.error):
        return f"the server said: {_server_text(exc)}; check mailbox.folder"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror}); check mailbox.host"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused; check mailbox.host, mailbox.port and that the server runs"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not trusted ({exc.verify_message}); check mailbox.ca_file and host"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason}); check mailbox.security and mailbox.port"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer in time; check mailbox.host, mailbox.port and the firewall"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{exc.strerror}; check mailbox.host and mailbox.port"
    return None


def _server_text(exc: BaseException) -> str:
    """The server's words: imapclient passes them on as the repr of bytes (b'...')."""
    text = _first_line(exc)
    if re.fullmatch(r"b(['\"]).*\1", text):
        with contextlib.suppress(ValueError, SyntaxError):
            return bytes(ast.literal_eval(text)).decode("utf-8", "replace")
    return text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _mailbox(settings: Settings | None) -> str:
    if settings is None:
        return "IMAP"
    box = settings.mailbox
    return f"IMAP {box.host}:{box.effective_port}"


def _smtp(settings: Settings | None) -> str:
    if settings is None:
        return "SMTP"
    return f"SMTP {settings.smtp.host}:{settings.smtp.effective_port}"


def _database(settings: Settings | None) -> str:
    if settings is None:
        return "database"
    return "database " + make_url(settings.database.url).render_as_string(hide_password=True)


def _create_schema_advice(schema: str, settings: Settings | None) -> str:
    url = make_url(settings.database.url) if settings else None
    role = (url.username if url else None) or "ROLE"
    database = (url.database if url else None) or "DATABASE"
    return (
        f"schema {schema} does not exist and role {role} may not create it; create it as"
        f" PostgreSQL's administrator: sudo -u postgres psql {database} -c"
        f' "CREATE SCHEMA {schema} AUTHORIZATION {role}" (README "Many schools"),'
        " then run `credmail db upgrade`"
    )


def _missing_directory(settings: Settings | None) -> Path | None:
    """The directory of a SQLite database file when it does not exist (SQLite then says
    only "unable to open database file")."""
    if settings is None:
        return None
    url = make_url(settings.database.url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    directory = Path(url.database).parent
    return None if directory.is_dir() else directory
