"""In-memory fakes of the service ports, for fast desk tests (no database, no servers).

Each repository keeps plain records in dicts; a unit of work applies its changes only on
`commit()` (it works on a deep copy of the store), so rollback behaviour is real.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from credmail.core.addresses import normalize_address
from credmail.core.values import MailRef, Person, Role
from credmail.service.directory_csv import DirectoryError, DirectoryRecord
from credmail.service.ports import (
    AttemptRepo,
    AuditEntry,
    AuditFilter,
    AuditRepo,
    BreakerRepo,
    CampaignRepo,
    CheckpointRepo,
    DeliveryState,
    DirectoryAdmin,
    DirectoryRepo,
    ImportSummary,
    LedgerEntry,
    LedgerRepo,
    LinkAuditRepo,
    LinkEvent,
    MailConnection,
    MailSender,
    NearMissRecord,
    NearMissRepo,
    NoticeRepo,
    OutboxEntry,
    OutboxRepo,
    OutgoingMail,
    PersonView,
    RegisterTask,
    RememberedAddress,
    RememberedRepo,
    ReviewFilter,
    ReviewItem,
    ReviewRepo,
    SignInFailures,
    StaffAccount,
    StaffRepo,
    StaffSessionRecord,
    TaskRepo,
    TokenRecord,
    TokenRepo,
    UnitOfWork,
    UnitOfWorkFactory,
)


class FakeClock:
    """A settable clock."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Store:
    """Everything the fake database holds."""

    people: dict[str, Person] = field(default_factory=dict)
    guardianships: dict[str, set[str]] = field(default_factory=dict)  # guardian -> students
    ledger: dict[int, tuple[LedgerEntry, str | None, tuple[str, ...], datetime]] = field(
        default_factory=dict
    )
    checkpoints: dict[str, tuple[int, int, datetime]] = field(default_factory=dict)
    outbox: dict[int, OutboxEntry] = field(default_factory=dict)
    outbox_accounts: dict[int, tuple[str, str] | None] = field(default_factory=dict)
    delivery: DeliveryState = field(default_factory=DeliveryState)
    review: dict[int, ReviewItem] = field(default_factory=dict)
    review_ledger: dict[int, int | None] = field(default_factory=dict)
    tokens: dict[str, TokenRecord] = field(default_factory=dict)
    breaker: tuple[bool, datetime | None] = (False, None)
    attempts: dict[str, int] = field(default_factory=dict)
    staff: dict[str, StaffAccount] = field(default_factory=dict)
    sessions: dict[str, StaffSessionRecord] = field(default_factory=dict)
    failures: dict[str, SignInFailures] = field(default_factory=dict)
    totp_steps: dict[str, int] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    claims: dict[str, datetime] = field(default_factory=dict)  # token selector -> until
    tasks: dict[int, tuple[RegisterTask, str]] = field(default_factory=dict)
    link_audit: list[LinkEvent] = field(default_factory=list)
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def add_person(self, person: Person) -> None:
        self.people[person.username] = person
        if person.students:
            self.guardianships[person.username] = set(person.students)


class FakeDirectory(DirectoryRepo):
    def __init__(self, store: Store) -> None:
        self.s = store

    def prefetch(self, address_keys: Sequence[str]) -> list[Person]:
        found = {p.username: p for key in address_keys for p in self.people_with_address(key)}
        return list(found.values())

    def people_with_address(self, address_key: str) -> list[Person]:
        return [
            p
            for p in sorted(self.s.people.values(), key=lambda p: p.username)
            if address_key in {normalize_address(e) for e in p.emails}
        ]

    def students_of(self, guardian_usernames: Sequence[str]) -> list[Person]:
        names = {s for g in guardian_usernames for s in self.s.guardianships.get(g, ())}
        return [self.s.people[n] for n in sorted(names) if n in self.s.people]

    def get(self, username: str) -> Person | None:
        return self.s.people.get(username)

    def guardians_of(self, student_username: str) -> list[Person]:
        return [
            self.s.people[g]
            for g, students in sorted(self.s.guardianships.items())
            if student_username in students
        ]


class FakeLedger(LedgerRepo):
    def __init__(self, store: Store) -> None:
        self.s = store

    def tally(self) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for entry, _message_id, reasons, _at in self.s.ledger.values():
            for reason in reasons or ("",):
                key = (entry.outcome, reason)
                counts[key] = counts.get(key, 0) + 1
        return counts

    def find_many(self, refs: Sequence[MailRef]) -> dict[str, LedgerEntry]:
        keys = {r.key for r in refs}
        return {e.source_key: e for e, *_ in self.s.ledger.values() if e.source_key in keys}

    def prefetch_message_ids(self, message_ids: Sequence[str]) -> None:
        pass  # every read is from memory already

    def expect(self, count: int) -> None:
        pass  # ids are handed out as entries come

    def find_by_message_id(self, message_id: str) -> LedgerEntry | None:
        for entry, mid, *_ in self.s.ledger.values():
            if mid == message_id:
                return entry
        return None

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
        entry_id = self.s.new_id()
        entry = LedgerEntry(entry_id, outcome, target_folder, False, ref.key)
        self.s.ledger[entry_id] = (entry, message_id, tuple(reasons), now)
        return entry_id

    def mark_moved(self, entry_ids: Sequence[int], now: datetime) -> None:
        for i in entry_ids:
            entry, *rest = self.s.ledger[i]
            self.s.ledger[i] = (replace(entry, moved=True), *rest)  # type: ignore[assignment]

    def retarget(
        self, entry_id: int, outcome: str, reasons: Sequence[str], target_folder: str | None
    ) -> None:
        """As the SQL ledger: the new outcome and folder, to be moved again."""
        entry, *rest = self.s.ledger[entry_id]
        changed = replace(entry, outcome=outcome, target_folder=target_folder, moved=False)
        self.s.ledger[entry_id] = (changed, *rest)  # type: ignore[assignment]

    def unmoved(self, folder: str, validity: int) -> list[LedgerEntry]:
        return [e for e, *_ in self.s.ledger.values() if not e.moved]

    def scrub_before(self, before: datetime) -> int:
        return 0

    def forget_message_ids(self, ledger_ids: Sequence[int]) -> int:
        count = 0
        for i in ledger_ids:
            if i in self.s.ledger and self.s.ledger[i][1] is not None:
                entry, _, reasons, at = self.s.ledger[i]
                self.s.ledger[i] = (entry, None, reasons, at)
                count += 1
        return count


class FakeCheckpoints(CheckpointRepo):
    def __init__(self, store: Store) -> None:
        self.s = store

    def get(self, folder: str) -> tuple[int, int] | None:
        found = self.s.checkpoints.get(folder)
        return (found[0], found[1]) if found else None

    def set(self, folder: str, validity: int, last_uid: int, now: datetime) -> None:
        self.s.checkpoints[folder] = (validity, last_uid, now)

    def last_sync(self) -> datetime | None:
        return max((at for *_, at in self.s.checkpoints.values()), default=None)


class FakeOutbox(OutboxRepo):
    """The outbox rows; counts and windows enough for the desks and the review flow."""

    def __init__(self, store: Store) -> None:
        self.s = store

    def prefetch_recent(
        self, address_keys: Sequence[str], usernames: Sequence[str], since: datetime
    ) -> None:
        pass  # every count is from memory already

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
        entry_id = self.s.new_id()
        self.s.outbox[entry_id] = OutboxEntry(
            id=entry_id,
            ledger_id=ledger_id,
            message_id=mail.message_id,
            template=template,
            recipient=mail.recipient,
            status="pending",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
            sent_at=None,
            last_error=None,
            envelope_from=mail.envelope_from,
            raw=mail.raw,
            token_selector=token_selector,
            purpose=account[1] if account else None,
        )
        self.s.outbox_accounts[entry_id] = account

    def account_links(
        self, username: str, purpose: str, since: datetime
    ) -> tuple[int, datetime | None]:
        times = [
            e.created_at
            for i, e in self.s.outbox.items()
            if self.s.outbox_accounts.get(i) == (username, purpose) and e.created_at >= since
        ]
        return len(times), max(times, default=None)

    def templates_since(self, since: datetime) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self.s.outbox.values():
            if e.created_at >= since:
                counts[e.template] = counts.get(e.template, 0) + 1
        return counts

    def mail_to(
        self, address_key: str, since: datetime, notice_template: str
    ) -> tuple[int, int, int]:
        mine = [
            (i, e)
            for i, e in self.s.outbox.items()
            if e.recipient and normalize_address(e.recipient) == address_key
            if e.created_at >= since
        ]
        links = sum(1 for i, _ in mine if self.s.outbox_accounts.get(i))
        notices = sum(1 for _, e in mine if e.template == notice_template)
        return len(mine), links, notices

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self.s.outbox.values():
            counts[e.status] = counts.get(e.status, 0) + 1
        return counts

    def knows_message_id(self, message_ids: Sequence[str]) -> bool:
        return any(e.message_id in message_ids for e in self.s.outbox.values())

    def due(self, now: datetime, limit: int) -> list[OutboxEntry]:
        due = [e for e in self.s.outbox.values() if e.status == "pending"]
        return [e for e in due if e.next_attempt_at <= now][:limit]

    def due_marker(self, now: datetime) -> tuple[int, int]:
        due = [e.id for e in self.due(now, len(self.s.outbox))]
        return len(due), max(due, default=0)

    def mark_sent(self, entry_id: int, now: datetime) -> None:
        self._set(entry_id, status="sent", sent_at=now, raw=None)

    def mark_retry(self, entry_id: int, error: str, next_at: datetime) -> None:
        e = self.s.outbox[entry_id]
        self._set(entry_id, attempts=e.attempts + 1, last_error=error, next_attempt_at=next_at)

    def mark_failed(self, entry_id: int, error: str) -> None:
        e = self.s.outbox[entry_id]
        self._set(entry_id, status="failed", attempts=e.attempts + 1, last_error=error)

    def listing(self, status: str | None) -> list[OutboxEntry]:
        return [e for e in self.s.outbox.values() if status is None or e.status == status]

    def get(self, entry_id: int) -> OutboxEntry | None:
        return self.s.outbox.get(entry_id)

    def claim(self, entry_id: int) -> bool:
        entry = self.s.outbox.get(entry_id)
        return entry is not None and entry.status == "pending"

    def requeue(self, entry_id: int, now: datetime) -> None:
        self._set(entry_id, status="pending", attempts=0, next_attempt_at=now, last_error=None)

    def for_recipient(self, address_key: str) -> list[OutboxEntry]:
        return [
            e
            for e in self.s.outbox.values()
            if e.recipient and normalize_address(e.recipient) == address_key
        ]

    def forget_recipient(self, address_key: str) -> list[int]:
        """Anonymize the rows (they stay for the audit trail); pending ones fail."""
        gone = self.for_recipient(address_key)
        for e in gone:
            erased = "erased on request" if e.status == "pending" else None
            status = "failed" if e.status == "pending" else e.status
            self._set(e.id, recipient=None, raw=None, last_error=erased, status=status)
        return [e.ledger_id for e in gone if e.ledger_id is not None]

    def scrub_before(self, before: datetime) -> int:
        return 0

    def oldest_unsent(self) -> datetime | None:
        unsent = [e.created_at for e in self.s.outbox.values() if e.status == "pending"]
        return min(unsent, default=None)

    def last_sent(self) -> datetime | None:
        return max((e.sent_at for e in self.s.outbox.values() if e.sent_at), default=None)

    def mark_bounced(self, message_ids: Sequence[str]) -> list[OutboxEntry]:
        wanted = set(message_ids)
        hit = [
            e.id for e in self.s.outbox.values() if e.status == "sent" and e.message_id in wanted
        ]
        for entry_id in hit:
            self._set(entry_id, status="bounced")
        return [self.s.outbox[entry_id] for entry_id in hit]

    def delivery_state(self) -> DeliveryState:
        return self.s.delivery

    def pause(self, now: datetime, reason: str) -> None:
        self.s.delivery = replace(self.s.delivery, paused_at=now, pause_reason=reason)

    def resume(self) -> bool:
        paused = self.s.delivery.paused_at is not None
        self.s.delivery = replace(self.s.delivery, paused_at=None, pause_reason=None)
        return paused

    def record_error(self, error: str, now: datetime) -> None:
        self.s.delivery = replace(self.s.delivery, last_error=error, last_error_at=now)

    def _set(self, entry_id: int, **changes: object) -> None:
        self.s.outbox[entry_id] = replace(self.s.outbox[entry_id], **changes)  # type: ignore[arg-type]


class FakeReview(ReviewRepo):
    def __init__(self, store: Store) -> None:
        self.s = store

    def add(self, item: ReviewItem, ledger_id: int | None) -> None:
        item_id = self.s.new_id()
        self.s.review[item_id] = replace(item, id=item_id)
        self.s.review_ledger[item_id] = ledger_id

    def pending(self, now: datetime | None = None) -> list[ReviewItem]:
        return [
            i
            for i in self.s.review.values()
            if i.status == "pending"
            and (now is None or i.deferred_until is None or i.deferred_until <= now)
        ]

    def count_pending(self, now: datetime | None = None) -> int:
        return len(self.pending(now))

    def deferred(self, now: datetime) -> list[ReviewItem]:
        found = [i for i in self.pending() if i.deferred_until and i.deferred_until > now]
        return sorted(found, key=lambda i: (i.deferred_until or now, i.id))

    def count_deferred(self, now: datetime) -> int:
        return len(self.deferred(now))

    def due(self, now: datetime) -> list[ReviewItem]:
        found = [i for i in self.pending() if i.deferred_until and i.deferred_until <= now]
        return sorted(found, key=lambda i: (i.deferred_until or now, i.id))

    def defer(self, item_id: int, until: datetime) -> bool:
        if self.s.review[item_id].status != "pending":
            return False
        self.s.review[item_id] = replace(self.s.review[item_id], deferred_until=until)
        return True

    def get(self, item_id: int) -> ReviewItem | None:
        return self.s.review.get(item_id)

    def queue(
        self, where: ReviewFilter, limit: int, offset: int = 0
    ) -> tuple[list[ReviewItem], int]:
        shown = self.deferred(where.at) if where.deferred and where.at else self.pending(where.at)
        found = [
            replace(i, raw=None)
            for i in shown
            if (not where.kind or i.kind == where.kind)
            and (not where.reason or where.reason in i.reasons)
            and (not where.older_than or i.created_at < where.older_than)
            and (not where.newer_than or i.created_at >= where.newer_than)
        ]
        return found[offset : offset + limit], len(found)

    def record_decision(
        self, item_id: int, decision: str, by: str, now: datetime, note: str | None, sent: str
    ) -> bool:
        if self.s.review[item_id].status != "pending":
            return False
        self.s.review[item_id] = replace(
            self.s.review[item_id],
            status=decision,
            decision=decision,
            decided_by=by,
            decided_at=now,
            note=note,
            sent_summary=sent,
        )
        return True

    def for_sender(self, address_key: str) -> list[ReviewItem]:
        return [i for i in self.s.review.values() if i.sender == address_key]

    def forget_sender(self, address_key: str) -> list[int]:
        """Delete the items; the ledger ids of those that had one (as the SQL repo)."""
        ledger_ids = []
        for item in self.for_sender(address_key):
            del self.s.review[item.id]
            ledger_id = self.s.review_ledger.pop(item.id, None)
            if ledger_id is not None:
                ledger_ids.append(ledger_id)
        return ledger_ids

    def purge_decided(self, before: datetime) -> int:
        return 0


class FakeTokens(TokenRepo):
    def __init__(self, store: Store) -> None:
        self.s = store

    def prefetch_live(self, usernames: Sequence[str]) -> None:
        pass  # every read is from memory already

    def add(self, selector: str, record: TokenRecord) -> None:
        self.s.tokens[selector] = record

    def revoke_active(
        self, username: str, purpose: str, now: datetime, address_key: str | None = None
    ) -> int:
        active = [
            s
            for s in self._active(username, purpose, now)
            if address_key is None
            or normalize_address(self.s.tokens[s].address or "") == address_key
        ]
        for selector in active:
            self.s.tokens[selector] = replace(self.s.tokens[selector], revoked_at=now)
        return len(active)

    def active(self, username: str, purpose: str, now: datetime) -> list[TokenRecord]:
        return [self.s.tokens[s] for s in self._active(username, purpose, now)]

    def find(self, selector: str) -> TokenRecord | None:
        return self.s.tokens.get(selector)

    def consume(self, selector: str, now: datetime) -> bool:
        record = self.s.tokens.get(selector)
        if record is None or record.used_at is not None:
            return False
        self.s.tokens[selector] = replace(record, used_at=now)
        return True

    def claim(self, selector: str, now: datetime, until: datetime) -> bool:
        record = self.s.tokens.get(selector)
        held = self.s.claims.get(selector)
        if record is None or record.used_at or record.revoked_at or record.expires_at <= now:
            return False
        if held is not None and held > now:
            return False
        self.s.claims[selector] = until
        return True

    def release(self, selector: str) -> None:
        self.s.claims.pop(selector, None)

    def mint(self, selector: str, token_hash: str, expires_at: datetime) -> bool:
        record = self.s.tokens.get(selector)
        if record is None or record.used_at or record.revoked_at:
            return False
        self.s.tokens[selector] = replace(record, token_hash=token_hash, expires_at=expires_at)
        return True

    def purge_expired(self, before: datetime) -> int:
        return 0

    def for_address(self, address_key: str) -> list[TokenRecord]:
        return [t for t in self.s.tokens.values() if t.address == address_key]

    def forget_address(self, address_key: str) -> int:
        gone = [s for s, t in self.s.tokens.items() if t.address == address_key]
        for selector in gone:
            del self.s.tokens[selector]
        return len(gone)

    def _active(self, username: str, purpose: str, now: datetime) -> list[str]:
        return [
            s
            for s, t in self.s.tokens.items()
            if (t.username, t.purpose) == (username, purpose)
            and t.used_at is None
            and t.revoked_at is None
            and t.expires_at > now
        ]


class FakeTasks(TaskRepo):
    def __init__(self, store: Store) -> None:
        self.s = store

    def add(self, task: RegisterTask, selector: str) -> int:
        assert all(sel != selector for _, sel in self.s.tasks.values()), "one task per link"
        task_id = self.s.new_id()
        self.s.tasks[task_id] = (replace(task, id=task_id), selector)
        return task_id

    def listing(self, status: str | None = None) -> list[RegisterTask]:
        tasks = [task for task, _ in self.s.tasks.values()]
        return [t for t in tasks if status is None or t.status == status]

    def get(self, task_id: int) -> RegisterTask | None:
        found = self.s.tasks.get(task_id)
        return found[0] if found else None

    def mark_done(self, task_id: int, now: datetime, by: str, note: str | None) -> bool:
        found = self.s.tasks.get(task_id)
        if found is None or found[0].status != "open":
            return False
        done = replace(found[0], status="done", done_at=now, done_by=by, note=note)
        self.s.tasks[task_id] = (done, found[1])
        return True

    def mark_many_done(
        self, task_ids: Sequence[int], now: datetime, by: str, note: str | None
    ) -> set[int]:
        return {i for i in task_ids if self.mark_done(i, now, by, note)}

    def for_address(self, address_key: str) -> list[RegisterTask]:
        return [t for t, _ in self.s.tasks.values() if t.address == address_key]

    def forget_address(self, address_key: str) -> int:
        gone = [i for i, (t, _) in self.s.tasks.items() if t.address == address_key]
        for task_id in gone:
            del self.s.tasks[task_id]
        return len(gone)

    def purge_done(self, before: datetime) -> int:
        gone = [
            i
            for i, (t, _) in self.s.tasks.items()
            if t.status == "done" and t.done_at is not None and t.done_at < before
        ]
        for task_id in gone:
            del self.s.tasks[task_id]
        return len(gone)


class FakeLinkAudit(LinkAuditRepo):
    def __init__(self, store: Store) -> None:
        self.s = store

    def add(self, event: LinkEvent) -> None:
        self.s.link_audit.append(event)

    def for_selector(self, selector: str) -> list[LinkEvent]:
        return [e for e in self.s.link_audit if e.selector == selector]

    def purge_before(self, before: datetime) -> int:
        kept = [e for e in self.s.link_audit if e.at >= before]
        gone = len(self.s.link_audit) - len(kept)
        self.s.link_audit = kept
        return gone


class FakeBreaker(BreakerRepo):
    def __init__(self, store: Store) -> None:
        self.s = store

    def tripped(self) -> bool:
        return self.s.breaker[0]

    def trip(self, now: datetime, reason: str) -> None:
        self.s.breaker = (True, self.s.breaker[1])

    def reset(self, now: datetime) -> bool:
        was = self.s.breaker[0]
        self.s.breaker = (False, now)
        return was

    def counting_since(self) -> datetime | None:
        return self.s.breaker[1]


class FakeAttempts(AttemptRepo):
    def __init__(self, store: Store) -> None:
        self.s = store

    def bump(self, ref: MailRef, now: datetime) -> int:
        self.s.attempts[ref.key] = self.s.attempts.get(ref.key, 0) + 1
        return self.s.attempts[ref.key]

    def first_attempts(self, refs: Sequence[MailRef], now: datetime) -> set[str]:
        new = {ref.key for ref in refs if ref.key not in self.s.attempts}
        for key in new:
            self.s.attempts[key] = 1
        return new

    def clear(self, ref: MailRef) -> None:
        self.s.attempts.pop(ref.key, None)

    def clear_many(self, refs: Sequence[MailRef]) -> None:
        for ref in refs:
            self.clear(ref)


class FakeStaff(StaffRepo):
    def __init__(self, store: Store) -> None:
        self.s = store

    def get(self, name: str) -> StaffAccount | None:
        return self.s.staff.get(name)

    def add(self, account: StaffAccount) -> None:
        self.s.staff[account.name] = account

    def update(self, account: StaffAccount) -> None:
        self.s.staff[account.name] = account

    def listing(self) -> list[StaffAccount]:
        return sorted(self.s.staff.values(), key=lambda a: a.name)

    def open_session(self, token_hash: str, record: StaffSessionRecord) -> None:
        self.s.sessions[token_hash] = record

    def session(self, token_hash: str) -> StaffSessionRecord | None:
        return self.s.sessions.get(token_hash)

    def touch_session(self, token_hash: str, now: datetime) -> None:
        self.s.sessions[token_hash] = replace(self.s.sessions[token_hash], last_seen_at=now)

    def close_session(self, token_hash: str) -> None:
        self.s.sessions.pop(token_hash, None)

    def close_sessions_of(self, name: str) -> int:
        gone = [k for k, r in self.s.sessions.items() if r.staff_name == name]
        for key in gone:
            del self.s.sessions[key]
        return len(gone)

    def purge_sessions(self, idle_since: datetime) -> int:
        gone = [k for k, r in self.s.sessions.items() if r.last_seen_at < idle_since]
        for key in gone:
            del self.s.sessions[key]
        return len(gone)

    def use_totp_step(self, name: str, step: int) -> bool:
        last = self.s.totp_steps.get(name)
        if last is not None and last >= step:
            return False
        self.s.totp_steps[name] = step
        return True

    def hold_failures(self, key: str, now: datetime) -> SignInFailures | None:
        return self.s.failures.get(key)

    def set_failures(self, key: str, state: SignInFailures) -> None:
        self.s.failures[key] = state

    def restore_failures(
        self, key: str, counted: SignInFailures, before: SignInFailures | None
    ) -> None:
        state = self.s.failures.get(key)
        if state is None:
            return
        if state.failures != counted.failures:
            self.s.failures[key] = replace(state, failures=max(0, state.failures - 1))
        elif before is None:
            del self.s.failures[key]
        else:
            self.s.failures[key] = before

    def clear_failures(self, key: str) -> None:
        self.s.failures.pop(key, None)


class FakeAudit(AuditRepo):
    def __init__(self, store: Store) -> None:
        self.s = store

    def add(self, entry: AuditEntry) -> None:
        self.s.audit.append(replace(entry, id=len(self.s.audit) + 1))

    def add_many(self, entries: Sequence[AuditEntry]) -> None:
        for entry in entries:
            self.add(entry)

    def _match(self, where: AuditFilter) -> list[AuditEntry]:
        return [
            e
            for e in reversed(self.s.audit)
            if (not where.actor or e.actor == where.actor)
            and (not where.action or e.action == where.action)
            and (not where.item or e.item == where.item)
            and (not where.since or e.at >= where.since)
            and (not where.until or e.at < where.until)
        ]

    def listing(self, where: AuditFilter, limit: int, offset: int = 0) -> list[AuditEntry]:
        return self._match(where)[offset : offset + limit]

    def count(self, where: AuditFilter) -> int:
        return len(self._match(where))


class FakeCampaigns:
    """No campaigns in the in-memory store: campaigns are tested on real databases."""

    def __getattr__(self, name: str) -> Any:
        if name == "bounced":
            return lambda message_ids: []
        raise NotImplementedError(f"FakeCampaigns.{name}")


class FakeNotices:
    """Nothing waits and nothing was told in the in-memory store: the digest and the
    alerts are tested on real databases."""

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"FakeNotices.{name}")


class FakeRemembered:
    """No remembered addresses in the in-memory store: tested on real databases."""

    def for_address(self, address_key: str) -> list[RememberedAddress]:
        return []

    def forget_address(self, address_key: str) -> int:
        return 0

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"FakeRemembered.{name}")


class FakeNearMisses:
    """No near misses in the in-memory store (they are tested on real databases): the
    privacy and retention questions get empty answers, anything else fails loudly."""

    def for_sender(self, address_key: str) -> list[NearMissRecord]:
        return []

    def forget_sender(self, address_key: str) -> list[int]:
        return []

    def purge_decided(self, before: datetime) -> int:
        return 0

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"FakeNearMisses.{name}")


class FakeUnitOfWork(UnitOfWork):
    """Works on a copy of the store; `commit()` publishes it, anything else drops it."""

    def __init__(self, owner: FakeUnitOfWorkFactory, read_only: bool) -> None:
        self.owner, self.read_only = owner, read_only
        self.nudged = 0
        self.store = copy.deepcopy(owner.store)
        s = self.store
        self.directory: DirectoryRepo = FakeDirectory(s)
        self.ledger: LedgerRepo = FakeLedger(s)
        self.checkpoints: CheckpointRepo = FakeCheckpoints(s)
        self.outbox: OutboxRepo = FakeOutbox(s)
        self.review: ReviewRepo = FakeReview(s)
        self.tokens: TokenRepo = FakeTokens(s)
        self.breaker: BreakerRepo = FakeBreaker(s)
        self.attempts: AttemptRepo = FakeAttempts(s)
        self.staff: StaffRepo = FakeStaff(s)
        self.audit: AuditRepo = FakeAudit(s)
        self.tasks: TaskRepo = FakeTasks(s)
        self.link_audit: LinkAuditRepo = FakeLinkAudit(s)
        self.campaigns: CampaignRepo = FakeCampaigns()
        self.notices: NoticeRepo = FakeNotices()
        self.remembered: RememberedRepo = FakeRemembered()
        self.near_misses: NearMissRepo = FakeNearMisses()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def flush(self) -> None:
        pass  # nothing is queued

    def commit(self) -> None:
        assert not self.read_only, "a read-only unit of work must not commit"
        self.owner.store = self.store
        self.owner.commits += 1
        self.owner.nudges += self.nudged
        self.nudged = 0

    def nudge(self) -> None:
        self.nudged = 1

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        saved = copy.deepcopy(self.store)
        try:
            yield
        except BaseException:
            self.store.__dict__.update(saved.__dict__)  # the repositories share the object
            raise


class FakeUnitOfWorkFactory(UnitOfWorkFactory):
    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()
        self.commits = 0
        self.nudges = 0  # commits that asked to wake the daemon's outbox

    def __call__(self, read_only: bool = False, crash_safe_only: bool = False) -> FakeUnitOfWork:
        return FakeUnitOfWork(self, read_only)


class FakeDirectoryAdmin(DirectoryAdmin):
    """The DirectoryAdmin port over the fake store's people (no guardianship checks
    beyond the roles: an unknown or non-student link is a DirectoryError)."""

    def __init__(self, uow: FakeUnitOfWorkFactory) -> None:
        self.uow = uow

    def apply(
        self,
        records: Sequence[DirectoryRecord],
        *,
        prune: bool,
        keep: Callable[[ImportSummary], bool],
        retire: bool = False,
        renames: Mapping[str, str] | None = None,
    ) -> ImportSummary:
        with self.uow() as uow:
            store = uow.store
            renamed = _rename(store, renames or {})
            before = dict(store.people)
            added = updated = unchanged = 0
            for record in records:
                person = _person(record)
                old = before.get(record.username)
                if old is None:
                    added += 1
                elif record.username in renamed.values():
                    pass
                elif old == person:
                    unchanged += 1
                else:
                    updated += 1
                store.add_person(person)
            removed = []
            if prune:
                wanted = {r.username for r in records}
                for username, person in sorted(before.items()):
                    if username not in wanted:
                        del store.people[username]
                        removed.append(f"{username} ({person.role.value}, {person.full_name})")
            retired = []
            if retire and not prune:
                wanted = {r.username for r in records}
                for username, person in sorted(before.items()):
                    if username not in wanted and person.role is Role.STUDENT and person.active:
                        store.add_person(replace(person, active=False))
                        retired.append(f"{username} ({person.role.value}, {person.full_name})")
            _check_links(store)
            summary = ImportSummary(
                added=added,
                updated=updated,
                unchanged=unchanged,
                removed=len(removed),
                before=len(before),
                removed_people=tuple(removed),
                retired=len(retired),
                retired_people=tuple(retired),
                renamed=len(renamed),
                renamed_people=tuple(f"{old} -> {new}" for old, new in renamed.items()),
            )
            if keep(summary):
                uow.commit()
        return summary

    def roles(self) -> dict[str, Role]:
        with self.uow(read_only=True) as uow:
            return {name: person.role for name, person in uow.store.people.items()}

    def people(self, username: str | None = None) -> list[PersonView]:
        with self.uow(read_only=True) as uow:
            people = sorted(uow.store.people.values(), key=lambda p: p.username)
            return [
                PersonView(
                    username=p.username,
                    role=p.role.value,
                    first_name=p.first_name,
                    last_name=p.last_name,
                    birth_date=p.birth_date.isoformat() if p.birth_date else None,
                    class_name=None,
                    emails=p.emails,
                    students=tuple(sorted(p.students)),
                    guardians=tuple(g.username for g in uow.directory.guardians_of(p.username)),
                    language=p.language,
                    active=p.active,
                    new_student=p.new_student,
                )
                for p in people
                if username is None or p.username == username
            ]

    def search(self, text: str, limit: int) -> list[PersonView]:
        needle = text.strip().casefold()
        found = [
            p
            for p in self.people()
            if needle
            and needle in "\n".join((p.username, p.first_name, p.last_name, *p.emails)).casefold()
        ]
        return found[:limit]

    def set_language(self, username: str, language: str | None, audit: AuditEntry) -> bool:
        with self.uow() as uow:
            person = uow.store.people.get(username)
            if person is None:
                return False
            uow.store.people[username] = replace(person, language=language)
            uow.audit.add(audit)
            uow.commit()
        return True


def _person(record: DirectoryRecord) -> Person:
    return Person(
        username=record.username,
        role=record.role,
        first_name=record.first_name,
        last_name=record.last_name,
        birth_date=record.birth_date,
        emails=tuple(record.emails),
        students=tuple(record.students),
        language=record.language,
        new_student=record.new_student,
        active=record.active,
    )


def _rename(store: Store, renames: Mapping[str, str]) -> dict[str, str]:
    """Rename people on file whose new name is free, and their guardians' links."""
    done = {o: n for o, n in renames.items() if o in store.people and n not in store.people}
    for old, new in done.items():
        store.people[new] = replace(store.people.pop(old), username=new)
    for person in list(store.people.values()):
        store.people[person.username] = replace(
            person, students=tuple(done.get(s, s) for s in person.students)
        )
    store.guardianships = {
        done.get(g, g): {done.get(s, s) for s in students}
        for g, students in store.guardianships.items()
    }
    return done


def _check_links(store: Store) -> None:
    problems = [
        f"unknown student {s}"
        for p in store.people.values()
        for s in p.students
        if s not in store.people or store.people[s].role is not Role.STUDENT
    ]
    if problems:
        raise DirectoryError(problems)


class FakeSender(MailSender):
    """A MailSender that records what it was handed."""

    def __init__(self) -> None:
        self.sent: list[OutgoingMail] = []

    @asynccontextmanager
    async def connect(self, keep_open: bool = False) -> AsyncIterator[MailConnection]:
        yield _Connection(self.sent)

    async def close(self) -> None:
        return None


class _Connection(MailConnection):
    def __init__(self, sent: list[OutgoingMail]) -> None:
        self.sent = sent

    async def start(self, mail: OutgoingMail) -> None:
        return None

    async def finish(self, mail: OutgoingMail) -> None:
        self.sent.append(mail)

    async def reset(self) -> None:
        return None
