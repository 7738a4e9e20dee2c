"""What the command modules share: the `Context` a handler gets, `CommandError`, the
failure exit code, terminal-safe output and the review helpers (who decides at the
terminal, a desk's refusal worded with how to confirm). cli.py and the command modules
import it; it imports none of them (no import circle)."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from credmail.bootstrap import App, bootstrap
from credmail.config import Settings

if TYPE_CHECKING:
    from credmail.service.desks import Actor

EXIT_FAILURE = 1


class Context:
    """What a command needs; the app (and its engine) is built on first use, closed at exit."""

    def __init__(self, settings: Settings, may_migrate: bool = False) -> None:
        self.settings = settings
        self.may_migrate = may_migrate
        self._app: App | None = None

    def app(self, *, migrate: bool = True) -> App:
        """`migrate=False`: the schema is not looked at (check-config, db upgrade)."""
        if self._app is None:
            self._app = bootstrap(self.settings)
            if migrate and self.may_migrate:
                ensure_schema(self._app)
            elif migrate:
                require_schema(self._app)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


def ensure_schema(app: App) -> None:
    if not app.schema_current():
        app.upgrade_schema()


def require_schema(app: App) -> None:
    """Read-only commands never create a database: a missing one is named, not made."""
    url = app.engine.url
    shown = unquote(url.render_as_string(hide_password=True))  # host=/run/postgresql
    hint = (
        "run `credmail db upgrade`, or check that --config (or CREDMAIL_CONFIG) names "
        "the daemon's file"
    )
    path = url.database if url.get_backend_name() == "sqlite" else None
    if path and path != ":memory:" and not Path(path).exists():
        raise CommandError(f"database {shown} does not exist; {hint}")
    if not app.schema_current():
        raise CommandError(f"database {shown} is not at the newest revision; {hint}")


class CommandError(Exception):
    """A failure worded for the person at the terminal."""


def say(text: str = "") -> None:
    """Print review output with control sequences and bidi overrides removed."""
    from credmail.core.terminal import printable

    print(printable(text))


def line(text: object) -> str:
    """One value from mail or the directory, on one line."""
    from credmail.core.terminal import printable

    return printable(str(text), one_line=True)


def review_json(item: Any) -> dict[str, Any]:
    return {
        "id": item.id,
        "status": item.status,
        "created_at": item.created_at.isoformat(),
        "message_id": item.message_id,
        "sender": item.sender,
        "kind": str(item.kind),
        "subject": item.subject,
        "reasons": list(item.reasons),
    }


def actor() -> Actor:
    """Who decides at the terminal: the OS user (`--by` is only a note).

    Under sudo (the README's wrapper runs every command as the service user) that is the
    user who ran sudo: only root or a sudoer sets SUDO_USER, and whoever can run as the
    service user can already write the database, so trusting it gains no privilege."""
    from credmail.service.desks import Actor

    return Actor(os.environ.get("SUDO_USER") or getpass.getuser(), "cli")


def review_action(action: Callable[[], object]) -> object:
    from credmail.service.review import ReviewError

    try:
        return action()
    except ReviewError as exc:
        raise CommandError(line(f"{exc}{confirm_hint(exc)}")) from None


def confirm_hint(exc: Exception) -> str:
    """How to confirm at the terminal what the desk refused unless confirmed."""
    from credmail.service.review import AddressNeeded, KindMismatch, NotACandidate

    if isinstance(exc, KindMismatch):
        return f": se è voluto, confermare con --kind {exc.gets}"
    if isinstance(exc, NotACandidate):
        return ": se è voluto, ripetere il comando con --conferma"
    if isinstance(exc, AddressNeeded):
        return " con --to"
    return ""
