"""SQLAlchemy repository: single-use link tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from credmail.adapters.db.models import TokenRow
from credmail.adapters.db.repositories._common import core, rowcount
from credmail.core.addresses import normalize_address
from credmail.service.ports import TokenRecord


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


class SqlTokens:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, selector: str, record: TokenRecord) -> None:
        values = {
            "selector": selector,
            "token_hash": record.token_hash,
            "username": record.username,
            "purpose": record.purpose,
            "address": record.address,
            "address_key": normalize_address(record.address) if record.address else None,
            "state_hash": record.state_hash,
            "created_at": record.created_at,
            "expires_at": record.expires_at,
        }
        core(self.session).execute(_ADD, values)

    def revoke_active(
        self, username: str, purpose: str, now: datetime, address_key: str | None = None
    ) -> int:
        """Every live token of the account and purpose (only those sent to `address_key`
        when given: a campaign link per guardian address leaves the others alone)."""
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
