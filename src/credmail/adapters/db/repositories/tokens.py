"""SQLAlchemy repository: single-use link tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from credmail.adapters.db import writes
from credmail.adapters.db.models import TokenRow
from credmail.adapters.db.repositories._common import core, rowcount, storable
from credmail.core.addresses import normalize_address
from credmail.service.ports import ORIGIN_REQUEST, TokenRecord


def _token_record(row: TokenRow) -> TokenRecord:
    return TokenRecord(
        username=row.username,
        purpose=row.purpose,
        address=row.address,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
        revoked_at=row.revoked_at,
        state_hash=row.state_hash,
        token_hash=row.token_hash,
        origin=row.origin or ORIGIN_REQUEST,
    )


def _spendable(selector: str, now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        TokenRow.selector == selector,
        TokenRow.used_at.is_(None),
        TokenRow.revoked_at.is_(None),
        TokenRow.expires_at > now,
    )


_TABLE: Any = TokenRow.__table__
_ADD = insert(_TABLE)
_MINT = (
    update(_TABLE)
    .where(
        TokenRow.selector == bindparam("b_selector"),
        TokenRow.used_at.is_(None),
        TokenRow.revoked_at.is_(None),
    )
    .values(token_hash=bindparam("b_token_hash"), expires_at=bindparam("b_expires_at"))
)


_LIVE_OF_ACCOUNT = (
    TokenRow.username == bindparam("b_username"),
    TokenRow.purpose == bindparam("b_purpose"),
    TokenRow.used_at.is_(None),
    TokenRow.revoked_at.is_(None),
)
_REVOKE = update(_TABLE).where(*_LIVE_OF_ACCOUNT).values(revoked_at=bindparam("b_now"))
_REVOKE_AT = (
    update(_TABLE)
    .where(*_LIVE_OF_ACCOUNT, TokenRow.address_key == bindparam("b_address_key"))
    .values(revoked_at=bindparam("b_now"))
)


_LIVE_OF_ACCOUNTS = select(TokenRow.username, TokenRow.purpose, TokenRow.address_key).where(
    TokenRow.username.in_(bindparam("usernames", expanding=True)),
    TokenRow.used_at.is_(None),
    TokenRow.revoked_at.is_(None),
)


class SqlTokens:
    """`prefetch_live` reads which of a batch's accounts hold live tokens, in one query;
    `revoke_active` then skips its UPDATE for an account that holds none (`add` and
    `revoke_active` keep the answers current; `forget` drops them: a savepoint rolled
    back)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._live: set[tuple[str, str, str | None]] | None = None
        self._live_of: set[str] = set()

    def prefetch_live(self, usernames: Sequence[str]) -> None:
        names = storable(usernames)
        if not names:
            return
        rows = core(self.session).execute(_LIVE_OF_ACCOUNTS, {"usernames": names})
        self._live = {(row.username, row.purpose, row.address_key) for row in rows}
        self._live_of = set(names)

    def forget(self) -> None:
        self._live, self._live_of = None, set()

    def add(self, selector: str, record: TokenRecord) -> None:
        """Queued: inserted with the transaction's next statement (see `writes`)."""
        address_key = normalize_address(record.address) if record.address else None
        values = {
            "selector": selector,
            "token_hash": record.token_hash,
            "username": record.username,
            "purpose": record.purpose,
            "address": record.address,
            "address_key": address_key,
            "state_hash": record.state_hash,
            "created_at": record.created_at,
            "expires_at": record.expires_at,
            "origin": record.origin,
        }
        writes.queue(core(self.session), _ADD, values)
        if self._live is not None and record.username in self._live_of:
            self._live.add((record.username, record.purpose, address_key))

    def revoke_active(
        self, username: str, purpose: str, now: datetime, address_key: str | None = None
    ) -> int:
        """Every live token of the account and purpose (only those sent to `address_key`
        when given: a campaign link per guardian address leaves the others alone)."""
        if self._live is not None:  # what this revokes is not live any more
            revoked = {
                live
                for live in self._live
                if live[:2] == (username, purpose) and address_key in (None, live[2])
            }
            if not revoked and username in self._live_of:
                return 0  # known to hold none: no UPDATE
            self._live -= revoked
        params = {"b_username": username, "b_purpose": purpose, "b_now": now}
        if address_key is None:
            return rowcount(core(self.session).execute(_REVOKE, params))
        params["b_address_key"] = address_key
        return rowcount(core(self.session).execute(_REVOKE_AT, params))

    def active(self, username: str, purpose: str, now: datetime) -> list[TokenRecord]:
        """Unspent, unrevoked, unexpired tokens: what a new one for the account revokes."""
        query = select(TokenRow).where(
            TokenRow.username == username,
            TokenRow.purpose == purpose,
            TokenRow.used_at.is_(None),
            TokenRow.revoked_at.is_(None),
            TokenRow.expires_at > now,
        )
        return [_token_record(row) for row in self.session.scalars(query.order_by(TokenRow.id))]

    def find(self, selector: str) -> TokenRecord | None:
        row = self.session.scalar(select(TokenRow).where(TokenRow.selector == selector))
        return _token_record(row) if row else None

    def consume(self, selector: str, now: datetime) -> bool:
        """One conditional UPDATE: of two concurrent spends, one finds the row spent."""
        spendable = update(TokenRow).where(*_spendable(selector, now))
        return rowcount(self.session.execute(spendable.values(used_at=now))) == 1

    def claim(self, selector: str, now: datetime, until: datetime) -> bool:
        free = or_(TokenRow.claimed_until.is_(None), TokenRow.claimed_until <= now)
        claimable = update(TokenRow).where(*_spendable(selector, now), free)
        return rowcount(self.session.execute(claimable.values(claimed_until=until))) == 1

    def release(self, selector: str) -> None:
        self.session.execute(
            update(TokenRow).where(TokenRow.selector == selector).values(claimed_until=None)
        )

    def mint(self, selector: str, token_hash: str, expires_at: datetime) -> bool:
        params = {"b_selector": selector, "b_token_hash": token_hash, "b_expires_at": expires_at}
        return rowcount(core(self.session).execute(_MINT, params)) == 1

    def purge_expired(self, before: datetime) -> int:
        return rowcount(self.session.execute(delete(TokenRow).where(TokenRow.expires_at < before)))

    def for_address(self, address_key: str) -> list[TokenRecord]:
        rows = self.session.scalars(select(TokenRow).where(TokenRow.address_key == address_key))
        return [_token_record(row) for row in rows]

    def forget_address(self, address_key: str) -> int:
        query = delete(TokenRow).where(TokenRow.address_key == address_key)
        return rowcount(self.session.execute(query))
