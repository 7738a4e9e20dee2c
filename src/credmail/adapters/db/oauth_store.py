"""The OAuth2 identity's row: refresh token encrypted at rest (Fernet), sign-in state.

Each call is its own short transaction, so a rotated refresh token is committed the
moment it arrives (one UPDATE replaces the old one: there is never a moment without a
usable token on disk), and `credmail status`, another process, reads the sign-in state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from credmail.adapters.db.models import OAuthIdentityRow

if TYPE_CHECKING:  # cryptography is loaded only where a token key is used (10 MB resident)
    from cryptography.fernet import Fernet

IDENTITY = "default"


class TokenKeyError(Exception):
    """The token key file is missing or wrong; worded for the sysadmin."""


@dataclass(frozen=True)
class SignInState:
    status: str  # "ok" | "needs_reauth"
    cause: str | None
    fix: str | None
    updated_at: datetime


def load_key(
    path: Path | None, create: bool = False, setting: str = "oauth.token_key_file"
) -> Fernet | None:
    """The Fernet key in `path` (None when there is none yet); with `create`, a new key is
    written (mode 0600) first. Errors name `setting`, the key that gave the path."""
    if path is None or not (create or path.exists()):
        return None
    from cryptography.fernet import Fernet

    try:
        if create and not path.exists():
            path.touch(mode=0o600)
            path.write_bytes(Fernet.generate_key())
        return Fernet(path.read_bytes().strip())
    except OSError as exc:
        raise TokenKeyError(f"{setting}: cannot use {path}: {exc.strerror}") from None
    except ValueError:
        raise TokenKeyError(f"{setting}: {path} does not hold a Fernet key") from None


class OAuthStore:
    def __init__(self, engine: Engine, key: Fernet | None = None) -> None:
        self.engine, self.key = engine, key

    def _row(self, session: Session) -> OAuthIdentityRow:
        row = session.get(OAuthIdentityRow, IDENTITY)
        if row is None:
            row = OAuthIdentityRow(name=IDENTITY, status="ok", updated_at=_now())
            session.add(row)
        return row

    def refresh_token(self) -> str | None:
        with Session(self.engine) as session:
            row = session.get(OAuthIdentityRow, IDENTITY)
            sealed = row.refresh_token if row is not None else None
        if sealed is None:
            return None
        if self.key is None:
            raise TokenKeyError("oauth.token_key_file is needed to read the stored token")
        from cryptography.fernet import InvalidToken

        try:
            return self.key.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise TokenKeyError(
                "oauth.token_key_file: the key does not open the stored refresh token "
                "(run `credmail oauth login` again)"
            ) from None

    def save_refresh_token(self, token: str) -> None:
        if self.key is None:
            raise TokenKeyError("oauth.token_key_file is needed to store a refresh token")
        sealed = self.key.encrypt(token.encode()).decode()
        with Session(self.engine) as session, session.begin():
            row = self._row(session)
            row.refresh_token, row.updated_at = sealed, _now()

    def record(self, status: str, cause: str | None = None, fix: str | None = None) -> None:
        with Session(self.engine) as session, session.begin():
            row = self._row(session)
            row.status, row.cause, row.fix, row.updated_at = status, cause, fix, _now()

    def state(self) -> SignInState | None:
        with Session(self.engine) as session:
            row = session.get(OAuthIdentityRow, IDENTITY)
            if row is None:
                return None
            return SignInState(row.status, row.cause, row.fix, row.updated_at)


def _now() -> datetime:
    return datetime.now(UTC)
