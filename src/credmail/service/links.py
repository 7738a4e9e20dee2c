"""Link issuers behind one port: single-use hashed tokens (default) or a URL template."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import quote, urlsplit

from credmail.service.ports import TokenRecord, UnitOfWork

TOKEN_BYTES = 32


@dataclass(frozen=True)
class IssuedLink:
    url: str
    expires_at: datetime | None


class LinkIssuer(Protocol):
    def issue(
        self, uow: UnitOfWork, username: str, purpose: str, address: str, now: datetime
    ) -> IssuedLink: ...


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


class TokenLinkIssuer:
    """A 256-bit secret per link; only its SHA-256 is stored; a new one revokes older ones."""

    def __init__(self, base_url: str, ttl_minutes: int) -> None:
        self.base_url = base_url.rstrip("/")
        self.ttl = timedelta(minutes=ttl_minutes)

    def issue(
        self, uow: UnitOfWork, username: str, purpose: str, address: str, now: datetime
    ) -> IssuedLink:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        expires = now + self.ttl
        uow.tokens.revoke_active(username, purpose, now)
        uow.tokens.add(
            token_hash(token), TokenRecord(username, purpose, address, now, expires, None, None)
        )
        return IssuedLink(f"{self.base_url}/reset/{token}", expires)


class TemplateLinkIssuer:
    """For registers that run their own reset page: a configured URL with {username}."""

    def __init__(self, url_template: str) -> None:
        self.url_template = url_template

    def issue(
        self, uow: UnitOfWork, username: str, purpose: str, address: str, now: datetime
    ) -> IssuedLink:
        return IssuedLink(self.url_template.format(username=quote(username, safe="")), None)


@dataclass(frozen=True)
class TokenStatus:
    found: bool
    username: str | None = None
    purpose: str | None = None
    valid: bool = False
    state: str = "unknown"
    expires_at: datetime | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "found": self.found,
            "username": self.username,
            "purpose": self.purpose,
            "valid": self.valid,
            "state": self.state,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


def extract_token(token_or_link: str) -> str:
    """Accept a bare token or a full `{base_url}/reset/{token}` link."""
    text = token_or_link.strip()
    if "://" in text:
        path = urlsplit(text).path.rstrip("/")
        return path.rsplit("/", 1)[-1]
    return text


def check_token(uow: UnitOfWork, token_or_link: str, now: datetime) -> TokenStatus:
    record = uow.tokens.find(token_hash(extract_token(token_or_link)))
    if record is None:
        return TokenStatus(found=False)
    state = _state(record, now)
    return TokenStatus(
        True, record.username, record.purpose, state == "valid", state, record.expires_at
    )


def _state(record: TokenRecord, now: datetime) -> str:
    if record.used_at is not None:
        return "used"
    if record.revoked_at is not None:
        return "revoked"
    if record.expires_at <= now:
        return "expired"
    return "valid"
