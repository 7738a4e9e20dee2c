"""SQLAlchemy repositories: console staff, their sessions and sign-in failures; the
append-only audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from credmail.adapters.db.models import AuditRow, SignInFailureRow, StaffRow, StaffSessionRow
from credmail.adapters.db.repositories._common import core, rowcount
from credmail.service.ports import (
    AuditEntry,
    AuditFilter,
    SignInFailures,
    StaffAccount,
    StaffSessionRecord,
)


def _account(row: StaffRow) -> StaffAccount:
    return StaffAccount(
        name=row.name,
        role=row.role,
        password_hash=row.password_hash,
        active=row.active,
        created_at=row.created_at,
        password_changed_at=row.password_changed_at,
        totp_secret=row.totp_secret,
        password_trimmed=row.password_trimmed,
    )


class SqlStaff:
    def __init__(self, session: Session) -> None:
        self.db = session

    def _row(self, name: str) -> StaffRow | None:
        return self.db.scalar(select(StaffRow).where(StaffRow.name == name))

    def get(self, name: str) -> StaffAccount | None:
        row = self._row(name)
        return _account(row) if row else None

    def add(self, account: StaffAccount) -> None:
        self.db.add(
            StaffRow(
                name=account.name,
                role=account.role,
                password_hash=account.password_hash,
                totp_secret=account.totp_secret,
                active=account.active,
                created_at=account.created_at,
                password_changed_at=account.password_changed_at,
                password_trimmed=account.password_trimmed,
            )
        )
        self.db.flush()

    def update(self, account: StaffAccount) -> None:
        self.db.execute(
            update(StaffRow)
            .where(StaffRow.name == account.name)
            .values(
                role=account.role,
                password_hash=account.password_hash,
                totp_secret=account.totp_secret,
                active=account.active,
                password_changed_at=account.password_changed_at,
                password_trimmed=account.password_trimmed,
            )
        )

    def use_totp_step(self, name: str, step: int) -> bool:
        query = (
            update(StaffRow)
            .where(
                StaffRow.name == name,
                or_(StaffRow.totp_last_step.is_(None), StaffRow.totp_last_step < step),
            )
            .values(totp_last_step=step)
        )
        return rowcount(self.db.execute(query)) == 1

    def listing(self) -> list[StaffAccount]:
        return [_account(r) for r in self.db.scalars(select(StaffRow).order_by(StaffRow.name))]

    def open_session(self, token_hash: str, record: StaffSessionRecord) -> None:
        self.db.add(
            StaffSessionRow(
                token_hash=token_hash,
                staff_name=record.staff_name,
                csrf=record.csrf,
                created_at=record.created_at,
                last_seen_at=record.last_seen_at,
            )
        )
        self.db.flush()

    def session_row(self, token_hash: str) -> StaffSessionRow | None:
        query = select(StaffSessionRow).where(StaffSessionRow.token_hash == token_hash)
        return self.db.scalar(query)

    def session(self, token_hash: str) -> StaffSessionRecord | None:
        row = self.session_row(token_hash)
        if row is None:
            return None
        return StaffSessionRecord(row.staff_name, row.csrf, row.created_at, row.last_seen_at)

    def touch_session(self, token_hash: str, now: datetime) -> None:
        self.db.execute(
            update(StaffSessionRow)
            .where(StaffSessionRow.token_hash == token_hash)
            .values(last_seen_at=now)
        )

    def close_session(self, token_hash: str) -> None:
        self.db.execute(delete(StaffSessionRow).where(StaffSessionRow.token_hash == token_hash))

    def close_sessions_of(self, name: str) -> int:
        query = delete(StaffSessionRow).where(StaffSessionRow.staff_name == name)
        return rowcount(self.db.execute(query))

    def purge_sessions(self, idle_since: datetime) -> int:
        query = delete(StaffSessionRow).where(StaffSessionRow.last_seen_at < idle_since)
        return rowcount(self.db.execute(query))

    def hold_failures(self, key: str, now: datetime) -> SignInFailures | None:
        """An empty row is made first when there is none, so that PostgreSQL has a row to
        lock (SQLite's writers hold the whole database already). Rows are emptied, never
        deleted: a sign-in waiting for the lock always finds the row when it gets it."""
        dialect = self.db.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        empty = insert(SignInFailureRow).values(key=key, failures=0, last_failure_at=now)
        self.db.execute(empty.on_conflict_do_nothing())
        row = self.db.execute(
            select(
                SignInFailureRow.failures,
                SignInFailureRow.last_failure_at,
                SignInFailureRow.locked_until,
            )
            .where(SignInFailureRow.key == key)
            .with_for_update()
        ).one()
        return SignInFailures(*row) if row.failures else None

    def set_failures(self, key: str, state: SignInFailures) -> None:
        row = self.db.get(SignInFailureRow, key)
        if row is None:
            row = SignInFailureRow(key=key)
            self.db.add(row)
        row.failures, row.last_failure_at = state.failures, state.last_failure_at
        row.locked_until = state.locked_until
        self.db.flush()

    def restore_failures(
        self, key: str, counted: SignInFailures, before: SignInFailures | None
    ) -> None:
        row = self.db.get(SignInFailureRow, key, with_for_update=True)
        if row is None:
            return
        if row.failures != counted.failures:
            row.failures = max(0, row.failures - 1)
        elif before is None:
            row.failures, row.locked_until = 0, None
        else:
            row.failures, row.last_failure_at = before.failures, before.last_failure_at
            row.locked_until = before.locked_until
        self.db.flush()

    def clear_failures(self, key: str) -> None:
        query = update(SignInFailureRow).where(SignInFailureRow.key == key)
        self.db.execute(query.values(failures=0, locked_until=None))


def _where(query: Select[Any], where: AuditFilter) -> Select[Any]:
    if where.actor:
        query = query.where(AuditRow.actor == where.actor)
    if where.action:
        query = query.where(AuditRow.action == where.action)
    if where.item:
        query = query.where(AuditRow.item == where.item)
    if where.since:
        query = query.where(AuditRow.at >= where.since)
    if where.until:
        query = query.where(AuditRow.at < where.until)
    return query


class SqlAudit:
    """Adds and reads; there is deliberately no update or delete."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, entry: AuditEntry) -> None:
        self.session.add(
            AuditRow(
                at=entry.at,
                actor=entry.actor,
                source=entry.source,
                action=entry.action,
                item=entry.item,
                detail=entry.detail,
            )
        )
        self.session.flush()

    def add_many(self, entries: Sequence[AuditEntry]) -> None:
        if entries:
            rows = [
                {
                    "at": e.at,
                    "actor": e.actor,
                    "source": e.source,
                    "action": e.action,
                    "item": e.item,
                    "detail": e.detail,
                }
                for e in entries
            ]
            core(self.session).execute(insert(AuditRow.__table__), rows)  # type: ignore[arg-type]

    def listing(self, where: AuditFilter, limit: int, offset: int = 0) -> list[AuditEntry]:
        query = _where(select(AuditRow), where).order_by(AuditRow.id.desc())
        rows = self.session.scalars(query.limit(limit).offset(offset))
        return [AuditEntry(r.at, r.actor, r.source, r.action, r.item, r.detail, r.id) for r in rows]

    def count(self, where: AuditFilter) -> int:
        query = _where(select(func.count()).select_from(AuditRow), where)
        return int(self.session.scalar(query) or 0)
