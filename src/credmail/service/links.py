"""Link issuers behind one port: single-use split tokens (default) or a URL template.

A token is `selector.verifier`: the selector finds the row, the verifier (256 bits) is
stored only as SHA-256 and compared in constant time. A token is bound to the account,
the purpose, the address on file and the account's directory state; a new token for the
same account and purpose revokes older ones; spending it is one conditional UPDATE.

The verifier is minted when the mail leaves, not when it is queued: a queued mail holds
placeholders and the token row only its selector, so nothing on disk opens an account
before delivery, and the link's lifetime counts from the send.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Protocol
from urllib.parse import quote, urlsplit

from credmail.core.addresses import address_key, normalize_address
from credmail.core.campaign import PURPOSE_FIRST_ACCESS
from credmail.core.recipients import link_kind, matching, recipients
from credmail.core.values import Person
from credmail.service.ports import ORIGIN_REQUEST, TokenRecord, TokenState, UnitOfWork

SELECTOR_BYTES = 12
VERIFIER_BYTES = 32
UNMINTED = ""  # token_hash of a token whose mail has not left yet: matches no verifier
LINK_PLACEHOLDER = "@@CREDMAIL_LINK@@"
EXPIRY_PLACEHOLDER = "@@CREDMAIL_EXPIRES_AT@@"
PLAIN_EXPIRY_PLACEHOLDER = "@@CREDMAIL_EXPIRES_PLAIN@@"  # translations: no Italian "alle"
# A mail with several links (a campaign mail for siblings) names each by its selector.
KEYED_LINK = "@@CREDMAIL_LINK:{selector}@@"
KEYED_LINK_PATTERN = re.compile(r"@@CREDMAIL_LINK:([0-9a-f]{1,64})@@")


@dataclass(frozen=True)
class IssuedLink:
    url: str
    expires_at: datetime | None
    selector: str | None = None  # set when the secret is minted at send time


class LinkIssuer(Protocol):
    def issue(
        self,
        uow: UnitOfWork,
        person: Person,
        purpose: str,
        address: str,
        now: datetime,
        *,
        per_address: bool = False,
        origin: str = ORIGIN_REQUEST,
    ) -> IssuedLink:
        """`per_address`: revoke only older links sent to the same address (a campaign
        sends one link per guardian address); otherwise every older link of the account.
        `origin`: why the link is sent (ports.ORIGINS), for the page that opens it."""

    def mint(
        self, uow: UnitOfWork, selector: str, now: datetime, purpose: str | None = None
    ) -> IssuedLink | None:
        """The real link for a queued mail, valid from `now`; None if revoked or gone.
        `purpose`, when the caller knows it, saves looking the token up for its TTL."""


def digest(verifier: str) -> str:
    return hashlib.sha256(verifier.encode("ascii", "replace")).hexdigest()


def directory_state(person: Person) -> str:
    """A fingerprint of what the token depends on; any change invalidates the token."""
    fields = [
        person.username,
        person.role.value,
        person.first_name,
        person.last_name,
        str(person.birth_date),
        # an address with no key (kept from before the UTS 46 keys) still counts, as written
        sorted(address_key(e) or e.strip().lower() for e in person.emails),
    ]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


class TokenLinkIssuer:
    def __init__(
        self,
        base_url: str,
        ttl_minutes: int,
        purpose_ttls: Mapping[str, timedelta] | None = None,
    ) -> None:
        """`purpose_ttls`: a longer (or shorter) life for some purposes (the campaign's)."""
        self.base_url = base_url.rstrip("/")
        self.ttl = timedelta(minutes=ttl_minutes)
        self.purpose_ttls = dict(purpose_ttls or {})

    def issue(
        self,
        uow: UnitOfWork,
        person: Person,
        purpose: str,
        address: str,
        now: datetime,
        *,
        per_address: bool = False,
        origin: str = ORIGIN_REQUEST,
    ) -> IssuedLink:
        """Reserve the token (selector only); `mint` gives it a verifier at send time."""
        username = person.username
        selector = secrets.token_hex(SELECTOR_BYTES)  # hex: a link never starts with "-"
        uow.tokens.revoke_active(
            username, purpose, now, normalize_address(address) if per_address else None
        )
        record = TokenRecord(
            username,
            purpose,
            address,
            now,
            now + self.purpose_ttls.get(purpose, self.ttl),
            None,
            None,
            directory_state(person),
            UNMINTED,
            origin,
        )
        uow.tokens.add(selector, record)
        return IssuedLink(LINK_PLACEHOLDER, None, selector)

    def mint(
        self, uow: UnitOfWork, selector: str, now: datetime, purpose: str | None = None
    ) -> IssuedLink | None:
        verifier = secrets.token_urlsafe(VERIFIER_BYTES)
        if purpose is None and self.purpose_ttls:
            record = uow.tokens.find(selector)
            purpose = record.purpose if record is not None else None
        ttl = self.purpose_ttls.get(purpose, self.ttl) if purpose else self.ttl
        expires = now + ttl
        if not uow.tokens.mint(selector, digest(verifier), expires):
            return None
        return IssuedLink(f"{self.base_url}/reset/{selector}.{verifier}", expires, selector)


class TemplateLinkIssuer:
    """For registers that run their own reset page: a configured URL with {username}."""

    def __init__(self, url_template: str) -> None:
        self.url_template = url_template

    def issue(
        self,
        uow: UnitOfWork,
        person: Person,
        purpose: str,
        address: str,
        now: datetime,
        *,
        per_address: bool = False,
        origin: str = ORIGIN_REQUEST,
    ) -> IssuedLink:
        username = quote(person.username, safe="")
        return IssuedLink(self.url_template.format(username=username), None)

    def mint(
        self, uow: UnitOfWork, selector: str, now: datetime, purpose: str | None = None
    ) -> IssuedLink | None:
        return None  # nothing is ever deferred: `issue` returns the final link


@dataclass(frozen=True)
class TokenStatus:
    found: bool
    username: str | None = None
    purpose: str | None = None
    valid: bool = False
    state: str = TokenState.UNKNOWN
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


def split_token(token_or_link: str) -> tuple[str, str]:
    """Accept a bare token or a full `{base_url}/reset/{token}` link."""
    text = token_or_link.strip()
    if "://" in text:
        text = urlsplit(text).path.rstrip("/").rsplit("/", 1)[-1]
    selector, _, verifier = text.partition(".")
    return selector, verifier


def check_token(uow: UnitOfWork, token_or_link: str, now: datetime) -> TokenStatus:
    selector, verifier = split_token(token_or_link)
    record = uow.tokens.find(selector) if selector and verifier else None
    if record is None or not hmac.compare_digest(record.token_hash, digest(verifier)):
        return TokenStatus(found=False)
    state = _state(uow, record, now)
    return TokenStatus(
        found=True,
        username=record.username,
        purpose=record.purpose,
        valid=state == TokenState.VALID,
        state=state,
        expires_at=record.expires_at,
    )


def redeem_token(uow: UnitOfWork, token_or_link: str, now: datetime) -> TokenStatus:
    """Spend a token once (the reset page's POST); the caller commits."""
    status = check_token(uow, token_or_link, now)
    if not status.valid:
        return status
    if not uow.tokens.consume(split_token(token_or_link)[0], now):
        return replace(status, valid=False, state=TokenState.USED)
    return replace(status, state=TokenState.REDEEMED)


def _state(uow: UnitOfWork, record: TokenRecord, now: datetime) -> TokenState:
    if record.used_at is not None:
        return TokenState.USED
    if record.revoked_at is not None:
        return TokenState.REVOKED
    if record.expires_at <= now:
        return TokenState.EXPIRED
    if not _still_bound(uow, record, now.date()):
        return TokenState.STALE
    return TokenState.VALID


def _purposes(person: Person, today: date) -> tuple[str, ...]:
    """The purposes a live link for `person` may have: the request link, and for a minor
    student the campaign's first-access link too."""
    purpose = link_kind(person, today)[0]
    return (purpose, PURPOSE_FIRST_ACCESS) if person.is_minor_on(today) else (purpose,)


def _still_bound(uow: UnitOfWork, record: TokenRecord, today: date) -> bool:
    """Same record, same kind of link, and its address still a recipient (core.recipients)."""
    person = uow.directory.get(record.username)
    if person is None or directory_state(person) != record.state_hash:
        return False
    if record.address is None or record.purpose not in _purposes(person, today):
        return False
    guardians = uow.directory.guardians_of(person.username) if person.is_minor_on(today) else []
    return bool(matching(recipients(person, guardians, today), record.address))
