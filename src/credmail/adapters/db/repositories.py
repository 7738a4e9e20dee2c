"""SQLAlchemy implementations of the storage ports; none of them commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, case, delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from credmail.adapters.db.models import (
    AttemptRow,
    BreakerRow,
    CheckpointRow,
    DeliveryStateRow,
    EmailRow,
    GuardianshipRow,
    LedgerRow,
    OutboxRow,
    PersonRow,
    ReviewRow,
    TokenRow,
)
from credmail.core.addresses import normalize_address
from credmail.core.values import MailRef, Person, Role
from credmail.service.ports import (
    DeliveryState,
    LedgerEntry,
    OutboxEntry,
    OutgoingMail,
    ReviewItem,
    TokenRecord,
)


def to_person(row: PersonRow, students: Sequence[str] = ()) -> Person:
    return Person(
        username=row.username,
        role=Role(row.role),
        first_name=row.first_name,
        last_name=row.last_name,
        birth_date=row.birth_date,
        emails=tuple(email.address for email in row.emails),
        students=tuple(students),
    )


class SqlDirectory:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _people(self, query: Select[PersonRow]) -> list[Person]:
        rows = list(self.session.scalars(query.options(selectinload(PersonRow.emails))).unique())
        children = self._children([row.id for row in rows if row.role == Role.GUARDIAN.value])
        return [to_person(row, children.get(row.id, ())) for row in rows]

    def _children(self, guardian_ids: Sequence[int]) -> dict[int, list[str]]:
        """Each guardian's students' usernames (Person.students), in one query."""
        if not guardian_ids:
            return {}
        query = (
            select(GuardianshipRow.guardian_id, PersonRow.username)
            .join(PersonRow, PersonRow.id == GuardianshipRow.student_id)
            .where(GuardianshipRow.guardian_id.in_(guardian_ids))
            .order_by(PersonRow.username)
        )
        found: dict[int, list[str]] = {}
        for guardian_id, username in self.session.execute(query):
            found.setdefault(guardian_id, []).append(username)
        return found

    def people_with_address(self, address_key: str) -> list[Person]:
        query = select(PersonRow).join(EmailRow).where(EmailRow.address_key == address_key)
        return self._people(query.order_by(PersonRow.username))

    def students_of(self, guardian_usernames: Sequence[str]) -> list[Person]:
        guardian = select(PersonRow.id).where(PersonRow.username.in_(guardian_usernames))
        student_ids = select(GuardianshipRow.student_id).where(
            GuardianshipRow.guardian_id.in_(guardian)
        )
        query = select(PersonRow).where(PersonRow.id.in_(student_ids))
        return self._people(query.order_by(PersonRow.username))

    def guardians_of(self, student_username: str) -> list[Person]:
        student = select(PersonRow.id).where(PersonRow.username == student_username)
        guardian_ids = select(GuardianshipRow.guardian_id).where(
            GuardianshipRow.student_id.in_(student)
        )
        query = select(PersonRow).where(PersonRow.id.in_(guardian_ids))
        return self._people(query.order_by(PersonRow.username))

    def get(self, username: str) -> Person | None:
        found = self._people(select(PersonRow).where(PersonRow.username == username))
        return found[0] if found else None


def _ledger_entry(row: LedgerRow) -> LedgerEntry:
    return LedgerEntry(
        row.id, row.outcome, row.target_folder, row.moved_at is not None, row.source_key
    )


class SqlLedger:
    def __init__(self, session: Session) -> None:
        self.session = session

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

    def find_by_message_id(self, message_id: str) -> LedgerEntry | None:
        row = self.session.scalar(
            select(LedgerRow).where(LedgerRow.message_id == message_id).order_by(LedgerRow.id)
        )
        return _ledger_entry(row) if row else None

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
        row = LedgerRow(
            folder=ref.folder,
            validity=ref.validity,
            source_key=ref.key,
            message_id=message_id,
            handled_at=now,
            outcome=outcome,
            reasons=list(reasons),
            target_folder=target_folder,
            error=error,
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def mark_moved(self, entry_ids: Sequence[int], now: datetime) -> None:
        query = update(LedgerRow).where(LedgerRow.id.in_(list(entry_ids)))
        self.session.execute(query.values(moved_at=now))

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
        return _rowcount(self.session.execute(query))

    def forget_message_ids(self, ledger_ids: Sequence[int]) -> int:
        if not ledger_ids:
            return 0
        query = update(LedgerRow).where(LedgerRow.id.in_(list(ledger_ids)))
        return _rowcount(self.session.execute(query.values(message_id=None, error=None)))


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


def _outbox_entry(row: OutboxRow) -> OutboxEntry:
    return OutboxEntry(
        id=row.id,
        ledger_id=row.ledger_id,
        message_id=row.message_id,
        template=row.template,
        recipient=row.recipient,
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at,
        last_error=row.last_error,
        envelope_from=row.envelope_from,
        raw=row.raw,
        token_selector=row.token_selector,
    )


class SqlOutbox:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        mail: OutgoingMail,
        template: str,
        now: datetime,
        *,
        account: tuple[str, str] | None = None,
        ledger_id: int | None = None,
        review_id: int | None = None,
        token_selector: str | None = None,
    ) -> int:
        username, purpose = account or (None, None)
        row = OutboxRow(
            message_id=mail.message_id,
            template=template,
            recipient=mail.recipient,
            recipient_key=normalize_address(mail.recipient),
            username=username,
            purpose=purpose,
            envelope_from=mail.envelope_from,
            raw=mail.raw,
            status="pending",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
            ledger_id=ledger_id,
            review_id=review_id,
            token_selector=token_selector,
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def account_links(
        self, username: str, purpose: str, since: datetime
    ) -> tuple[int, datetime | None]:
        query = select(func.count(), func.max(OutboxRow.created_at)).where(
            OutboxRow.username == username,
            OutboxRow.purpose == purpose,
            OutboxRow.created_at >= since,
        )
        count, last = self.session.execute(query).one()
        return int(count), last

    def templates_since(self, since: datetime) -> dict[str, int]:
        query = (
            select(OutboxRow.template, func.count())
            .where(OutboxRow.created_at >= since)
            .group_by(OutboxRow.template)
        )
        return {template: int(count) for template, count in self.session.execute(query)}

    def mail_to(
        self, address_key: str, since: datetime, notice_template: str
    ) -> tuple[int, int, int]:
        query = select(
            func.count(),
            func.count(OutboxRow.username),
            func.count(case((OutboxRow.template == notice_template, 1))),
        ).where(OutboxRow.recipient_key == address_key, OutboxRow.created_at >= since)
        row = self.session.execute(query).one()
        return int(row[0]), int(row[1]), int(row[2])

    def counts(self) -> dict[str, int]:
        query = select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
        return {status: int(count) for status, count in self.session.execute(query)}

    def knows_message_id(self, message_ids: Sequence[str]) -> bool:
        if not message_ids:
            return False
        found = self.session.scalar(
            select(OutboxRow.id).where(OutboxRow.message_id.in_(list(message_ids))).limit(1)
        )
        return found is not None

    def due(self, now: datetime, limit: int) -> list[OutboxEntry]:
        rows = self.session.scalars(
            select(OutboxRow)
            .where(OutboxRow.status == "pending", OutboxRow.next_attempt_at <= now)
            .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
            .limit(limit)
        )
        return [_outbox_entry(row) for row in rows]

    def mark_sent(self, entry_id: int, now: datetime) -> None:
        # The body holds a live link: keep only the metadata once delivered.
        self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == entry_id)
            .values(
                status="sent",
                sent_at=now,
                raw=None,
                attempts=OutboxRow.attempts + 1,
                last_error=None,
            )
        )

    def mark_retry(self, entry_id: int, error: str, next_at: datetime) -> None:
        self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == entry_id)
            .values(attempts=OutboxRow.attempts + 1, last_error=error, next_attempt_at=next_at)
        )

    def mark_failed(self, entry_id: int, error: str) -> None:
        self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == entry_id)
            .values(status="failed", attempts=OutboxRow.attempts + 1, last_error=error)
        )

    def listing(self, status: str | None) -> list[OutboxEntry]:
        query = select(OutboxRow).order_by(OutboxRow.id)
        if status:
            query = query.where(OutboxRow.status == status)
        return [_outbox_entry(row) for row in self.session.scalars(query)]

    def get(self, entry_id: int) -> OutboxEntry | None:
        row = self.session.get(OutboxRow, entry_id)
        return _outbox_entry(row) if row else None

    def claim(self, entry_id: int) -> OutboxEntry | None:
        query = (
            select(OutboxRow)
            .where(OutboxRow.id == entry_id, OutboxRow.status == "pending")
            .with_for_update()
        )
        row = self.session.scalar(query)
        return _outbox_entry(row) if row else None

    def requeue(self, entry_id: int, now: datetime) -> None:
        self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == entry_id)
            .values(status="pending", next_attempt_at=now)
        )

    def for_recipient(self, address_key: str) -> list[OutboxEntry]:
        query = select(OutboxRow).where(OutboxRow.recipient_key == address_key)
        return [_outbox_entry(row) for row in self.session.scalars(query.order_by(OutboxRow.id))]

    def forget_recipient(self, address_key: str) -> list[int]:
        """Erase the address and body; the row stays, anonymous, for the audit trail."""
        rows = list(
            self.session.scalars(select(OutboxRow).where(OutboxRow.recipient_key == address_key))
        )
        for row in rows:
            row.recipient = row.recipient_key = row.raw = row.last_error = None
            if row.status == "pending":
                row.status, row.last_error = "failed", "erased on request"
        return [row.ledger_id for row in rows if row.ledger_id is not None]

    def scrub_before(self, before: datetime) -> int:
        query = (
            update(OutboxRow)
            .where(
                OutboxRow.created_at < before,
                OutboxRow.status != "pending",
                OutboxRow.recipient.is_not(None),
            )
            .values(recipient=None, recipient_key=None, raw=None, last_error=None)
        )
        return _rowcount(self.session.execute(query))

    def oldest_unsent(self) -> datetime | None:
        query = select(func.min(OutboxRow.created_at)).where(OutboxRow.status == "pending")
        return self.session.scalar(query)

    def mark_bounced(self, message_ids: Sequence[str]) -> list[OutboxEntry]:
        """Sent rows with these Message-IDs become `bounced`; returns those that changed."""
        if not message_ids:
            return []
        query = select(OutboxRow).where(
            OutboxRow.message_id.in_(list(message_ids)), OutboxRow.status == "sent"
        )
        rows = list(self.session.scalars(query.with_for_update()))
        for row in rows:
            row.status = "bounced"
        self.session.flush()
        return [_outbox_entry(row) for row in rows]

    def _state(self) -> DeliveryStateRow:
        row = self.session.get(DeliveryStateRow, 1)
        if row is None:
            row = DeliveryStateRow(id=1)
            self.session.add(row)
        return row

    def delivery_state(self) -> DeliveryState:
        row = self.session.get(DeliveryStateRow, 1)
        if row is None:
            return DeliveryState()
        return DeliveryState(row.paused_at, row.pause_reason, row.last_error, row.last_error_at)

    def pause(self, now: datetime, reason: str) -> None:
        row = self._state()
        row.paused_at, row.pause_reason = now, reason

    def resume(self) -> bool:
        row = self.session.get(DeliveryStateRow, 1)
        if row is None or row.paused_at is None:
            return False
        row.paused_at = row.pause_reason = None
        return True

    def record_error(self, error: str, now: datetime) -> None:
        row = self._state()
        row.last_error, row.last_error_at = error, now


def _review_item(row: ReviewRow) -> ReviewItem:
    return ReviewItem(
        id=row.id,
        created_at=row.created_at,
        status=row.status,
        kind=row.kind,
        sender=row.sender,
        message_id=row.message_id,
        subject=row.subject,
        reasons=tuple(row.reasons),
        raw=row.raw,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision=row.decision,
        note=row.note,
        sent_summary=row.sent_summary,
    )


KEPT_HEADER_BYTES = 64 * 1024
KEPT_BODY_BYTES = 64 * 1024


def _shrink_raw(raw: bytes) -> bytes:
    """Headers and the start of the body: enough to decide, a bounded size."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = raw.partition(separator)
        if found:
            return head[:KEPT_HEADER_BYTES] + separator + body[:KEPT_BODY_BYTES]
    return raw[: KEPT_HEADER_BYTES + KEPT_BODY_BYTES]


class SqlReview:
    def __init__(self, session: Session, raw_cap: int | None = None) -> None:
        self.session = session
        self.raw_cap = raw_cap  # total bytes of raw messages kept for pending items

    def _pending_raw_bytes(self) -> int:
        query = select(func.sum(func.length(ReviewRow.raw))).where(ReviewRow.status == "pending")
        return int(self.session.scalar(query) or 0)

    def _fit(self, raw: bytes | None, reasons: list[str]) -> tuple[bytes | None, list[str]]:
        """Above the cap a new item keeps a shrunk copy, and says so in its reasons."""
        if raw is None or self.raw_cap is None:
            return raw, reasons
        if self._pending_raw_bytes() + len(raw) <= self.raw_cap:
            return raw, reasons
        shrunk = _shrink_raw(raw)
        return (shrunk, [*reasons, "raw_truncated"]) if len(shrunk) < len(raw) else (raw, reasons)

    def add(self, item: ReviewItem, ledger_id: int | None) -> int:
        raw, reasons = self._fit(item.raw, list(item.reasons))
        row = ReviewRow(
            ledger_id=ledger_id,
            created_at=item.created_at,
            status="pending",
            kind=item.kind,
            sender=item.sender,
            message_id=item.message_id,
            subject=item.subject,
            reasons=reasons,
            raw=raw,
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def count_pending(self) -> int:
        query = select(func.count()).select_from(ReviewRow).where(ReviewRow.status == "pending")
        return int(self.session.scalar(query) or 0)

    def pending(self) -> list[ReviewItem]:
        query = select(ReviewRow).where(ReviewRow.status == "pending").order_by(ReviewRow.id)
        return [_review_item(row) for row in self.session.scalars(query)]

    def get(self, item_id: int) -> ReviewItem | None:
        row = self.session.get(ReviewRow, item_id)
        return _review_item(row) if row else None

    def record_decision(
        self, item_id: int, decision: str, by: str, now: datetime, note: str | None, sent: str
    ) -> None:
        self.session.execute(
            update(ReviewRow)
            .where(ReviewRow.id == item_id)
            .values(
                status=decision,
                decision=decision,
                decided_by=by,
                decided_at=now,
                note=note,
                sent_summary=sent,
            )
        )

    def for_sender(self, address_key: str) -> list[ReviewItem]:
        query = select(ReviewRow).where(ReviewRow.sender == address_key).order_by(ReviewRow.id)
        return [_review_item(row) for row in self.session.scalars(query)]

    def forget_sender(self, address_key: str) -> list[int]:
        rows = list(self.session.scalars(select(ReviewRow).where(ReviewRow.sender == address_key)))
        for row in rows:
            self.session.delete(row)
        return [row.ledger_id for row in rows if row.ledger_id is not None]

    def purge_decided(self, before: datetime) -> int:
        query = delete(ReviewRow).where(
            ReviewRow.status != "pending", ReviewRow.decided_at < before
        )
        return _rowcount(self.session.execute(query))


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


class SqlTokens:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, selector: str, record: TokenRecord) -> None:
        self.session.add(
            TokenRow(
                selector=selector,
                token_hash=record.token_hash,
                username=record.username,
                purpose=record.purpose,
                address=record.address,
                address_key=normalize_address(record.address) if record.address else None,
                state_hash=record.state_hash,
                created_at=record.created_at,
                expires_at=record.expires_at,
            )
        )

    def revoke_active(self, username: str, purpose: str, now: datetime) -> int:
        result = self.session.execute(
            update(TokenRow)
            .where(
                TokenRow.username == username,
                TokenRow.purpose == purpose,
                TokenRow.used_at.is_(None),
                TokenRow.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        return _rowcount(result)

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
        result = self.session.execute(
            update(TokenRow)
            .where(
                TokenRow.selector == selector,
                TokenRow.used_at.is_(None),
                TokenRow.revoked_at.is_(None),
                TokenRow.expires_at > now,
            )
            .values(used_at=now)
        )
        return _rowcount(result) == 1

    def mint(self, selector: str, token_hash: str, expires_at: datetime) -> bool:
        result = self.session.execute(
            update(TokenRow)
            .where(
                TokenRow.selector == selector,
                TokenRow.used_at.is_(None),
                TokenRow.revoked_at.is_(None),
            )
            .values(token_hash=token_hash, expires_at=expires_at)
        )
        return _rowcount(result) == 1

    def purge_expired(self, before: datetime) -> int:
        return _rowcount(self.session.execute(delete(TokenRow).where(TokenRow.expires_at < before)))

    def for_address(self, address_key: str) -> list[TokenRecord]:
        rows = self.session.scalars(select(TokenRow).where(TokenRow.address_key == address_key))
        return [_token_record(row) for row in rows]

    def forget_address(self, address_key: str) -> int:
        query = delete(TokenRow).where(TokenRow.address_key == address_key)
        return _rowcount(self.session.execute(query))


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


class SqlBreaker:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _row(self) -> BreakerRow:
        row = self.session.get(BreakerRow, 1)
        if row is None:
            row = BreakerRow(id=1)
            self.session.add(row)
        return row

    def tripped(self) -> bool:
        row = self.session.get(BreakerRow, 1)
        return row is not None and row.tripped_at is not None

    def trip(self, now: datetime, reason: str) -> None:
        row = self._row()
        if row.tripped_at is None:
            row.tripped_at, row.reason = now, reason

    def reset(self, now: datetime) -> bool:
        row = self._row()
        was_tripped = row.tripped_at is not None
        row.tripped_at, row.reset_at, row.reason = None, now, None
        return was_tripped

    def counting_since(self) -> datetime | None:
        row = self.session.get(BreakerRow, 1)
        return row.reset_at if row else None


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

    def clear(self, ref: MailRef) -> None:
        self.session.execute(delete(AttemptRow).where(*self._where(ref)))
