"""SQLAlchemy repository: handled mail (ledger), folder checkpoints, per-message attempts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    bindparam,
    cast,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from credmail.adapters.db import writes
from credmail.adapters.db.models import AttemptRow, CheckpointRow, LedgerRow
from credmail.adapters.db.repositories._common import core, rowcount, storable
from credmail.core.values import MailRef
from credmail.service.ports import LedgerEntry


def _ledger_entry(row: Any) -> LedgerEntry:
    """A LedgerRow, or a row of the same columns from a Core query."""
    return LedgerEntry(
        id=row.id,
        outcome=row.outcome,
        target_folder=row.target_folder,
        moved=row.moved_at is not None,
        source_key=row.source_key,
    )


_BY_MESSAGE_ID = (
    select(
        LedgerRow.id,
        LedgerRow.outcome,
        LedgerRow.target_folder,
        LedgerRow.moved_at,
        LedgerRow.source_key,
    )
    .where(LedgerRow.message_id == bindparam("message_id"))
    .order_by(LedgerRow.id)
    .limit(1)
)
_BY_MESSAGE_IDS = select(
    LedgerRow.message_id,
    LedgerRow.id,
    LedgerRow.outcome,
    LedgerRow.target_folder,
    LedgerRow.moved_at,
    LedgerRow.source_key,
).where(LedgerRow.message_id.in_(bindparam("message_ids", expanding=True)))
_ADD = insert(LedgerRow.__table__).returning(LedgerRow.id)  # type: ignore[arg-type]
_ADD_WITH_ID = insert(LedgerRow.__table__)  # type: ignore[arg-type]
_DRAW_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('ledger', 'id')) FROM generate_series(1, :count)"
)


class SqlLedger:
    """`prefetch_message_ids` answers a batch's duplicate checks in one query; `add` keeps
    the answers current, and `forget` drops them (a savepoint rolled back).

    On PostgreSQL an entry's id is drawn from the table's sequence ahead (`expect` draws
    a batch's in one round trip), so `add` can return it and queue the insert (see
    `writes`); elsewhere `add` inserts at once and reads the id back."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._first: dict[str, LedgerEntry | None] = {}
        self._drawn: list[int] = []  # sequence values are never handed out twice

    @cached_property
    def _draws_ids(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    def expect(self, count: int) -> None:
        if count > len(self._drawn) and self._draws_ids:
            params = {"count": count - len(self._drawn)}
            self._drawn += core(self.session).execute(_DRAW_IDS, params).scalars()

    def tally(self) -> dict[tuple[str, str], int]:
        """(outcome, reason) -> handled messages; reason "" for those without one."""
        reasons = cast(LedgerRow.reasons, String)
        query = select(LedgerRow.outcome, reasons, func.count()).group_by(
            LedgerRow.outcome, reasons
        )
        counts: dict[tuple[str, str], int] = {}
        for outcome, reasons_json, count in self.session.execute(query):
            for reason in json.loads(reasons_json or "[]") or [""]:
                key = (str(outcome), str(reason))
                counts[key] = counts.get(key, 0) + int(count)
        return counts

    def find_many(self, refs: Sequence[MailRef]) -> dict[str, LedgerEntry]:
        if not refs:
            return {}
        first = refs[0]
        query = select(LedgerRow).where(
            LedgerRow.folder == first.folder,
            LedgerRow.validity == first.validity,
            LedgerRow.source_key.in_([ref.key for ref in refs]),
        )
        return {row.source_key: _ledger_entry(row) for row in self.session.scalars(query)}

    def prefetch_message_ids(self, message_ids: Sequence[str]) -> None:
        wanted = storable(message_ids)
        if not wanted:
            return
        first: dict[str, LedgerEntry | None] = dict.fromkeys(wanted)
        rows = core(self.session).execute(_BY_MESSAGE_IDS, {"message_ids": wanted})
        for row in sorted(rows, key=lambda row: row.id):
            if first[row.message_id] is None:
                first[row.message_id] = _ledger_entry(row)
        self._first.update(first)

    def forget(self) -> None:
        self._first.clear()

    def find_by_message_id(self, message_id: str) -> LedgerEntry | None:
        if message_id in self._first:
            return self._first[message_id]
        row = core(self.session).execute(_BY_MESSAGE_ID, {"message_id": message_id}).first()
        return None if row is None else _ledger_entry(row)

    def add(
        self,
        ref: MailRef,
        message_id: str | None,
        outcome: str,
        reasons: Sequence[str],
        target_folder: str | None,
        now: datetime,
        error: str | None = None,
    ) -> int:
        values = {
            "folder": ref.folder,
            "validity": ref.validity,
            "source_key": ref.key,
            "message_id": message_id,
            "handled_at": now,
            "outcome": outcome,
            "reasons": list(reasons),
            "target_folder": target_folder,
            "error": error,
        }
        if self._draws_ids:
            self.expect(1)
            values["id"] = entry_id = self._drawn.pop(0)
            writes.queue(core(self.session), _ADD_WITH_ID, values)
        else:
            entry_id = int(core(self.session).execute(_ADD, values).scalar_one())
        if message_id is not None and message_id in self._first and not self._first[message_id]:
            self._first[message_id] = LedgerEntry(entry_id, outcome, target_folder, False, ref.key)
        return entry_id

    def mark_moved(self, entry_ids: Sequence[int], now: datetime) -> None:
        query = update(LedgerRow).where(LedgerRow.id.in_(list(entry_ids)))
        self.session.execute(query.values(moved_at=now))

    def retarget(
        self, entry_id: int, outcome: str, reasons: Sequence[str], target_folder: str | None
    ) -> None:
        query = update(LedgerRow).where(LedgerRow.id == entry_id)
        values = {"outcome": outcome, "reasons": list(reasons), "target_folder": target_folder}
        self.session.execute(query.values(**values, moved_at=None))

    def unmoved(self, folder: str, validity: int) -> list[LedgerEntry]:
        rows = self.session.scalars(
            select(LedgerRow).where(
                LedgerRow.folder == folder,
                LedgerRow.validity == validity,
                LedgerRow.target_folder.is_not(None),
                LedgerRow.moved_at.is_(None),
            )
        )
        return [_ledger_entry(row) for row in rows]

    def scrub_before(self, before: datetime) -> int:
        query = (
            update(LedgerRow)
            .where(LedgerRow.handled_at < before, LedgerRow.message_id.is_not(None))
            .values(message_id=None, error=None)
        )
        return rowcount(self.session.execute(query))

    def forget_message_ids(self, ledger_ids: Sequence[int]) -> int:
        if not ledger_ids:
            return 0
        query = update(LedgerRow).where(LedgerRow.id.in_(list(ledger_ids)))
        return rowcount(self.session.execute(query.values(message_id=None, error=None)))


class SqlCheckpoints:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, folder: str) -> tuple[int, int] | None:
        row = self.session.get(CheckpointRow, folder)
        return (row.validity, row.last_uid) if row else None

    def set(self, folder: str, validity: int, last_uid: int, now: datetime) -> None:
        row = self.session.get(CheckpointRow, folder)
        if row is None:
            self.session.add(
                CheckpointRow(folder=folder, validity=validity, last_uid=last_uid, synced_at=now)
            )
            return
        row.validity, row.last_uid, row.synced_at = validity, last_uid, now

    def last_sync(self) -> datetime | None:
        return self.session.scalar(
            select(CheckpointRow.synced_at).order_by(CheckpointRow.synced_at.desc())
        )


class SqlAttempts:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _where(self, ref: MailRef) -> list[ColumnElement[bool]]:
        return [
            AttemptRow.folder == ref.folder,
            AttemptRow.validity == ref.validity,
            AttemptRow.source_key == ref.key,
        ]

    def bump(self, ref: MailRef, now: datetime) -> int:
        row = self.session.scalar(select(AttemptRow).where(*self._where(ref)))
        if row is None:
            row = AttemptRow(folder=ref.folder, validity=ref.validity, source_key=ref.key, count=0)
            self.session.add(row)
        row.count, row.updated_at = row.count + 1, now
        self.session.flush()
        return row.count

    def first_attempts(self, refs: Sequence[MailRef], now: datetime) -> set[str]:
        """Two statements for a batch: which were tried before, then one executemany
        insert of a first attempt for the others, whose keys are returned."""
        if not refs:
            return set()
        first = refs[0]
        tried = set(
            self.session.scalars(
                select(AttemptRow.source_key).where(
                    AttemptRow.folder == first.folder,
                    AttemptRow.validity == first.validity,
                    AttemptRow.source_key.in_([ref.key for ref in refs]),
                )
            )
        )
        new = [
            {
                "folder": ref.folder,
                "validity": ref.validity,
                "source_key": ref.key,
                "count": 1,
                "updated_at": now,
            }
            for ref in refs
            if ref.key not in tried
        ]
        if new:
            self.session.execute(insert(AttemptRow), new)
        return {ref.key for ref in refs if ref.key not in tried}

    def clear(self, ref: MailRef) -> None:
        self.session.execute(delete(AttemptRow).where(*self._where(ref)))

    def clear_many(self, refs: Sequence[MailRef]) -> None:
        if not refs:
            return
        first = refs[0]
        self.session.execute(
            delete(AttemptRow).where(
                AttemptRow.folder == first.folder,
                AttemptRow.validity == first.validity,
                AttemptRow.source_key.in_([ref.key for ref in refs]),
            )
        )
