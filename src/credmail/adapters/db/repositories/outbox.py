"""SQLAlchemy repository: queued replies: counts, delivery, the delivery pause."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, bindparam, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from credmail.adapters.db import writes
from credmail.adapters.db.models import DeliveryStateRow, OutboxRow
from credmail.adapters.db.repositories._common import core, rowcount, storable
from credmail.core.addresses import normalize_address
from credmail.service.pacing import BULK_TEMPLATES, UNCOUNTED_TEMPLATES, URGENT_TEMPLATES
from credmail.service.ports import (
    UNSENT,
    DeliveryState,
    OutboxEntry,
    OutboxStatus,
    OutgoingMail,
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
        purpose=row.purpose,
    )


REUSE_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class _Recent:
    """The columns of one queued mail that the limits count."""

    recipient_key: str | None
    username: str | None
    purpose: str | None
    template: str
    created_at: datetime


class SqlOutbox:
    """`prefetch_recent` reads the mail a batch's addresses and accounts were sent since a
    moment, in one query; `mail_to` and `account_links` then count it in memory for them,
    and `add` appends what this transaction queues (as the queries would see it); `forget`
    drops it (a savepoint rolled back)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._windows: list[tuple[datetime, dict[str, int]]] = []  # see templates_since
        self._recent: list[_Recent] = []
        self._recent_since: datetime | None = None
        self._recent_keys: set[str] = set()
        self._recent_names: set[str] = set()

    def prefetch_recent(
        self, address_keys: Sequence[str], usernames: Sequence[str], since: datetime
    ) -> None:
        keys, names = storable(address_keys), storable(usernames)
        if not (keys or names):
            return
        params = {"keys": keys, "names": names, "since": since}
        rows = core(self.session).execute(_RECENT, params)
        self._recent = [_Recent(*row) for row in rows]
        self._recent_since, self._recent_keys, self._recent_names = since, set(keys), set(names)

    def forget(self) -> None:
        self._recent_since = None
        self._recent_keys, self._recent_names = set(), set()
        self._recent = []

    def _remembered(self, since: datetime) -> bool:
        return self._recent_since is not None and since >= self._recent_since

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
    ) -> None:
        """Queued: inserted with the transaction's next statement (see `writes`)."""
        username, purpose = account or (None, None)
        values = {
            "message_id": mail.message_id,
            "template": template,
            "recipient": mail.recipient,
            "recipient_key": normalize_address(mail.recipient),
            "username": username,
            "purpose": purpose,
            "envelope_from": mail.envelope_from,
            "raw": mail.raw,
            "status": OutboxStatus.PENDING,
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
            "sent_at": None,
            "last_error": None,
            "ledger_id": ledger_id,
            "review_id": review_id,
            "token_selector": token_selector,
        }
        writes.queue(core(self.session), _ADD, values)
        for _start, counts in self._windows:
            counts[template] = counts.get(template, 0) + 1
        key = str(values["recipient_key"])
        if key in self._recent_keys or username in self._recent_names:
            self._recent.append(_Recent(key, username, purpose, template, now))

    def account_links(
        self, username: str, purpose: str, since: datetime
    ) -> tuple[int, datetime | None]:
        if username in self._recent_names and self._remembered(since):
            times = [
                mail.created_at
                for mail in self._recent
                if mail.username == username and mail.purpose == purpose
                if mail.created_at >= since
            ]
            return len(times), max(times, default=None)
        params = {"username": username, "purpose": purpose, "since": since}
        count, last = core(self.session).execute(_ACCOUNT_LINKS, params).one()
        return int(count), last

    def templates_since(self, since: datetime) -> dict[str, int]:
        """Mail queued since `since`, by template. Read once per window and transaction,
        then counted up by what this transaction queues (a batch of requests asks before
        each one; reading the hour each time costs O(mail in the hour) per request). A
        window reused for up to REUSE_WINDOW still counts the mail that aged out of it
        meanwhile, and a rolled-back savepoint's mail stays counted: both only ever
        overcount, so a limit can only trip early, never late."""
        for start, counts in self._windows:
            if start <= since <= start + REUSE_WINDOW:
                return dict(counts)
        rows = core(self.session).execute(_TEMPLATES_SINCE, {"since": since})
        counts = {template: int(count) for template, count in rows}
        self._windows.append((since, counts))
        return dict(counts)

    def mail_to(
        self, address_key: str, since: datetime, notice_template: str
    ) -> tuple[int, int, int]:
        if address_key in self._recent_keys and self._remembered(since):
            mails = [
                mail
                for mail in self._recent
                if mail.recipient_key == address_key and mail.created_at >= since
                if mail.template not in UNCOUNTED_TEMPLATES
            ]
            links = sum(mail.username is not None for mail in mails)
            notices = sum(mail.template == notice_template for mail in mails)
            return len(mails), links, notices
        params = {"key": address_key, "since": since, "notice": notice_template}
        row = core(self.session).execute(_MAIL_TO, params).one()
        return int(row[0]), int(row[1]), int(row[2])

    def counts(self) -> dict[str, int]:
        query = select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
        return {status: int(count) for status, count in self.session.execute(query)}

    def knows_message_id(self, message_ids: Sequence[str]) -> bool:
        if not message_ids:
            return False
        found = core(self.session).execute(_KNOWN, {"ids": list(message_ids)}).scalar()
        return found is not None

    def due(self, now: datetime, limit: int) -> list[OutboxEntry]:
        rows = self.session.scalars(
            select(OutboxRow)
            .where(OutboxRow.status == OutboxStatus.PENDING, OutboxRow.next_attempt_at <= now)
            .order_by(_urgency(), OutboxRow.next_attempt_at, OutboxRow.id)
            .limit(limit)
        )
        return [_outbox_entry(row) for row in rows]

    def due_marker(self, now: datetime) -> tuple[int, int]:
        found = self.session.execute(
            select(func.count(), func.coalesce(func.max(OutboxRow.id), 0)).where(
                OutboxRow.status == OutboxStatus.PENDING, OutboxRow.next_attempt_at <= now
            )
        ).one()
        return int(found[0]), int(found[1])

    def mark_sent(self, entry_id: int, now: datetime) -> None:
        # The body holds a live link: keep only the metadata once delivered.
        core(self.session).execute(_MARK_SENT, {"b_entry_id": entry_id, "b_now": now})

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
            .values(status=OutboxStatus.FAILED, attempts=OutboxRow.attempts + 1, last_error=error)
        )

    def listing(self, status: str | None) -> list[OutboxEntry]:
        query = select(OutboxRow).order_by(OutboxRow.id)
        if status == UNSENT:  # what still waits or failed: never the whole sent history
            query = query.where(OutboxRow.status != "sent")
        elif status:
            query = query.where(OutboxRow.status == status)
        return [_outbox_entry(row) for row in self.session.scalars(query)]

    def get(self, entry_id: int) -> OutboxEntry | None:
        row = self.session.get(OutboxRow, entry_id)
        return _outbox_entry(row) if row else None

    def claim(self, entry_id: int) -> bool:
        return core(self.session).execute(_CLAIM, {"entry_id": entry_id}).first() is not None

    def requeue(self, entry_id: int, now: datetime) -> None:
        self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == entry_id)
            .values(status=OutboxStatus.PENDING, next_attempt_at=now)
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
            if row.status == OutboxStatus.PENDING:
                row.status, row.last_error = OutboxStatus.FAILED, "erased on request"
        return [row.ledger_id for row in rows if row.ledger_id is not None]

    def scrub_before(self, before: datetime) -> int:
        query = (
            update(OutboxRow)
            .where(
                OutboxRow.created_at < before,
                OutboxRow.status != OutboxStatus.PENDING,
                OutboxRow.recipient.is_not(None),
            )
            .values(recipient=None, recipient_key=None, raw=None, last_error=None)
        )
        return rowcount(self.session.execute(query))

    def oldest_unsent(self) -> datetime | None:
        query = select(func.min(OutboxRow.created_at)).where(
            OutboxRow.status == OutboxStatus.PENDING
        )
        return self.session.scalar(query)

    def mark_bounced(self, message_ids: Sequence[str]) -> list[OutboxEntry]:
        """Sent rows with these Message-IDs become `bounced`; returns those that changed."""
        if not message_ids:
            return []
        query = select(OutboxRow).where(
            OutboxRow.message_id.in_(list(message_ids)), OutboxRow.status == OutboxStatus.SENT
        )
        rows = list(self.session.scalars(query.with_for_update()))
        for row in rows:
            row.status = OutboxStatus.BOUNCED
        self.session.flush()
        return [_outbox_entry(row) for row in rows]

    def last_sent(self) -> datetime | None:
        return self.session.scalar(select(func.max(OutboxRow.sent_at)))

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
        return DeliveryState(
            paused_at=row.paused_at,
            pause_reason=row.pause_reason,
            last_error=row.last_error,
            last_error_at=row.last_error_at,
        )

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


_ADD = insert(OutboxRow.__table__)  # type: ignore[arg-type]
_CLAIM = (
    select(OutboxRow.id)
    .where(OutboxRow.id == bindparam("entry_id"), OutboxRow.status == OutboxStatus.PENDING)
    .with_for_update()
)
_ACCOUNT_LINKS = select(func.count(), func.max(OutboxRow.created_at)).where(
    OutboxRow.username == bindparam("username"),
    OutboxRow.purpose == bindparam("purpose"),
    OutboxRow.created_at >= bindparam("since"),
)
_TEMPLATES_SINCE = (
    select(OutboxRow.template, func.count())
    .where(OutboxRow.created_at >= bindparam("since"))
    .group_by(OutboxRow.template)
)
_MAIL_TO = select(
    func.count(),
    func.count(OutboxRow.username),
    func.count(case((OutboxRow.template == bindparam("notice"), 1))),
).where(
    OutboxRow.recipient_key == bindparam("key"),
    OutboxRow.created_at >= bindparam("since"),
    OutboxRow.template.not_in(UNCOUNTED_TEMPLATES),  # the campaign has its own cap
)
_RECENT = select(
    OutboxRow.recipient_key,
    OutboxRow.username,
    OutboxRow.purpose,
    OutboxRow.template,
    OutboxRow.created_at,
).where(
    OutboxRow.created_at >= bindparam("since"),
    or_(
        OutboxRow.recipient_key.in_(bindparam("keys", expanding=True)),
        OutboxRow.username.in_(bindparam("names", expanding=True)),
    ),
)
_KNOWN = (
    select(OutboxRow.id).where(OutboxRow.message_id.in_(bindparam("ids", expanding=True))).limit(1)
)
_MARK_SENT = (
    update(OutboxRow.__table__)  # type: ignore[arg-type]
    .where(OutboxRow.id == bindparam("b_entry_id"))
    .values(
        status=OutboxStatus.SENT,
        sent_at=bindparam("b_now"),
        raw=None,
        attempts=OutboxRow.attempts + 1,
        last_error=None,
    )
)


def _urgency() -> ColumnElement[int]:
    """0 for replies a person waits for (they overtake other mail), 2 for bulk (the
    campaign), 1 for the rest."""
    return case(
        (OutboxRow.template.in_(URGENT_TEMPLATES), 0),
        (OutboxRow.template.in_(BULK_TEMPLATES), 2),
        else_=1,
    )
