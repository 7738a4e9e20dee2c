"""Requests in batches: parse -> verify -> decide -> limit -> record and queue.

The decision, the ledger entry, the review item and the outgoing mail commit together;
a batch commits once (group commit); when one of its messages fails, the batch is recorded
again with each message in its own savepoint, and the failing one is quarantined alone.
A failure of the message itself quarantines it at once; a failure of the world (a lost
connection, a database outage) propagates so the sync is retried, until the message has
used up its attempts, which are counted in the database and so survive crashes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog

from credmail.core.classify import SubjectRules, classify_subject
from credmail.core.decide import decide
from credmail.core.limits import Limits
from credmail.core.near_miss_policy import NearMissPolicy
from credmail.core.parse import parse_message
from credmail.core.privacy import AddressTagger
from credmail.core.values import (
    Classification,
    DecideOptions,
    Decision,
    Facts,
    HoldForReview,
    InboundMail,
    MailRef,
    MarkBounced,
    Outcome,
    RequestKind,
    Role,
    SenderAuth,
    SendLink,
    SendReply,
)
from credmail.service.authentication import SenderAuthenticator
from credmail.service.bounces import record_bounce
from credmail.service.limiting import RateLimiter
from credmail.service.outbox.queue import Mailer
from credmail.service.ports import (
    Clock,
    LedgerEntry,
    ReviewItem,
    ReviewStatus,
    UnitOfWork,
    UnitOfWorkFactory,
)


@dataclass(frozen=True)
class Policy:
    """The settings the pipeline needs, gathered once at start."""

    rules: SubjectRules
    own_addresses: frozenset[str]
    folders: Mapping[Outcome, str]
    timezone: ZoneInfo
    process_existing: bool = False
    max_message_bytes: int = 10_000_000
    batch_size: int = 100
    max_attempts: int = 3
    options: DecideOptions = field(default_factory=DecideOptions)
    limits: Limits = field(default_factory=Limits)
    single_use_links: bool = True  # token links (spent, revoked, expire); not a URL template
    near_miss: NearMissPolicy = field(default_factory=NearMissPolicy)


class _MessageFailed(Exception):
    """A message failed in a group recorded without savepoints: record it again with them."""


class OversizeError(Exception):
    """The message is larger than mailbox.max_message_bytes; its body is not fetched."""


class TooManyAttempts(Exception):
    """Processing this message started too often without finishing (crashes, outages)."""


class MessageProcessor:
    def __init__(
        self,
        policy: Policy,
        uow: UnitOfWorkFactory,
        mailer: Mailer,
        authenticator: SenderAuthenticator,
        clock: Clock,
        tag: AddressTagger,
        is_transient: Callable[[BaseException], bool],
        *,
        on_outbox: Callable[[], None] = lambda: None,
    ) -> None:
        """`on_outbox` is called after a commit that queued mail (the worker's nudge)."""
        self.policy = policy
        self.uow = uow
        self.mailer = mailer
        self.authenticator = authenticator
        self.limiter = RateLimiter(policy.limits, policy.timezone, policy.single_use_links)
        self.clock = clock
        self.tag = tag
        self.is_transient = is_transient
        self.on_outbox = on_outbox
        self.log = structlog.get_logger("credmail.pipeline")

    def _retried(self, error: Exception, attempt: int = 1) -> bool:
        """A transient failure with attempts left: raised, for the message to come again."""
        return self.is_transient(error) and attempt < self.policy.max_attempts

    def count_attempt(self, ref: MailRef) -> int:
        with self.uow(crash_safe_only=True) as uow:
            attempt = uow.attempts.bump(ref, self.clock())
            uow.commit()
        return attempt

    def process(self, ref: MailRef, attempt: int, raw: bytes | None) -> LedgerEntry:
        """`raw` is None when the body was not fetched (too large, or attempts used up)."""
        try:
            prepared = self._prepare(ref, attempt, raw)
            with self.uow() as uow:
                entry, done = self._record(uow, prepared)
                uow.attempts.clear(ref)
                uow.commit()
        except Exception as exc:
            if self._retried(exc, attempt):
                raise
            return self._quarantine(ref, raw or b"", exc)
        self._after_commit([done])
        return entry

    def process_batch(
        self, items: Sequence[tuple[MailRef, bytes | None]], should_stop: Callable[[], bool]
    ) -> tuple[list[tuple[MailRef, LedgerEntry]], bool]:
        """Group commit: one transaction for the batch, a savepoint per message.

        The first attempt of each message never tried is counted first, for the whole
        batch in one commit that survives a crash of the process. A message tried before
        (an earlier batch holding it crashed or failed) is not trusted to the group: it
        goes through `process` alone, its attempt counted just before, so a message that
        kills the process is quarantined after `max_attempts` tries like before and takes
        no other message with it. A message that fails rolls back its own savepoint and is
        quarantined in the same transaction. Returns the entries and whether a stop was
        asked.
        """
        if not items:
            return [], False
        with self.uow(crash_safe_only=True) as uow:
            new = uow.attempts.first_attempts([ref for ref, _ in items], self.clock())
            uow.commit()
        results, stopped = self._group([(r, raw) for r, raw in items if r.key in new], should_stop)
        for ref, raw in items:
            if ref.key in new:
                continue
            if stopped or should_stop():
                return results, True
            results.append((ref, self.process(ref, self.count_attempt(ref), raw)))
        return results, stopped

    def _group(
        self, items: Sequence[tuple[MailRef, bytes | None]], should_stop: Callable[[], bool]
    ) -> tuple[list[tuple[MailRef, LedgerEntry]], bool]:
        prepared: list[_Prepared | tuple[MailRef, bytes, Exception]] = []
        stopped = False
        for ref, raw in items:  # parsing and DNS outside the transaction (and its lock)
            if should_stop():
                stopped = True
                break
            try:
                prepared.append(self._prepare(ref, 1, raw))
            except Exception as exc:
                if self._retried(exc):
                    raise
                prepared.append((ref, raw or b"", exc))
        try:
            recorded = self._record_group(items, prepared, savepoints=False)
        except _MessageFailed:  # rare: again, each message in its own savepoint
            recorded = self._record_group(items, prepared, savepoints=True)
        results, done, quarantined = recorded
        for failed, problem in quarantined:
            self._log_quarantine(failed, problem)
        self._after_commit(done)
        return results, stopped

    def _record_group(
        self,
        items: Sequence[tuple[MailRef, bytes | None]],
        prepared: Sequence[_Prepared | tuple[MailRef, bytes, Exception]],
        *,
        savepoints: bool,
    ) -> tuple[list[tuple[MailRef, LedgerEntry]], list[_Done], list[tuple[MailRef, Exception]]]:
        """One transaction for the group. Without savepoints (the usual pass: two
        statements a message fewer) anything that fails, a message or an insert queued
        for the group, raises _MessageFailed and the whole transaction is rolled back,
        for the caller to run again with a savepoint per message, where the failing one
        is quarantined alone."""
        results: list[tuple[MailRef, LedgerEntry]] = []
        done: list[_Done] = []
        quarantined: list[tuple[MailRef, Exception]] = []
        with self.uow() as uow:
            mails = [item.mail for item in prepared if isinstance(item, _Prepared)]
            self._prefetch(uow, mails, entries=len(prepared))
            try:
                for item in prepared:
                    ref, entry, outcome, failure = self._record_one(uow, item, savepoints)
                    results.append((ref, entry))
                    if outcome is not None:
                        done.append(outcome)
                    if failure is not None:
                        quarantined.append((ref, failure))
                uow.flush()  # the group's queued inserts: one refused fails the group
            except Exception as error:
                if savepoints or self._retried(error):
                    raise
                raise _MessageFailed from error
            uow.attempts.clear_many([ref for ref, _ in items])  # the unstarted too: not tried
            uow.commit()
        return results, done, quarantined

    def _record_one(
        self, uow: UnitOfWork, item: _Prepared | tuple[MailRef, bytes, Exception], savepoint: bool
    ) -> tuple[MailRef, LedgerEntry, _Done | None, Exception | None]:
        """Record one message of a group (in its own savepoint when asked), or quarantine
        it when it failed: its entry, what to log, and its failure."""
        if isinstance(item, _Prepared):
            try:
                with uow.savepoint() if savepoint else contextlib.nullcontext():
                    entry, outcome = self._record(uow, item)
                return item.ref, entry, outcome, None
            except Exception as error:
                if not savepoint or self._retried(error):
                    raise
                ref, raw, failure = item.ref, item.raw, error
        else:
            ref, raw, failure = item
        entry = self._quarantine_in(uow, ref, raw, failure)
        if savepoint:  # its inserts now, not in the next message's savepoint
            uow.flush()
        return ref, entry, None, failure

    def _prefetch(self, uow: UnitOfWork, mails: Sequence[InboundMail], entries: int) -> None:
        """What the group's decisions will read, in a few queries instead of a few per
        message: the senders' people, earlier mail with the same Message-IDs, recent mail
        to the senders and their accounts (theirs, their students'), the accounts' live
        tokens; and the ids of the group's ledger `entries` where they are drawn ahead.
        A value no query can carry (a NUL in an address) is left out, to fail in
        its own message's lookup and take only that message with it; should the reads
        fail anyway, they are undone and each message reads for itself."""
        try:
            with uow.savepoint():
                uow.ledger.expect(entries)
                self._read_ahead(uow, mails)
        except Exception as exc:
            if self.is_transient(exc):
                raise
            self.log.warning("batch.prefetch_failed", error_type=type(exc).__name__)

    def _read_ahead(self, uow: UnitOfWork, mails: Sequence[InboundMail]) -> None:
        senders = [mail.sender for mail in mails if mail.sender]
        people = uow.directory.prefetch(senders)
        uow.ledger.prefetch_message_ids([mail.message_id for mail in mails if mail.message_id])
        accounts = [p.username for p in people] + [s for p in people for s in p.students]
        self.limiter.prefetch(uow, senders, accounts, self.clock())
        uow.tokens.prefetch_live(accounts)

    def _prepare(self, ref: MailRef, attempt: int, raw: bytes | None) -> _Prepared:
        if attempt > self.policy.max_attempts:
            raise TooManyAttempts(f"{attempt - 1} attempts")
        if raw is None:
            raise OversizeError(f"{ref.size} bytes")
        mail = parse_message(raw)
        sender_auth = self.authenticator.check(raw, mail)  # may query DNS: outside the transaction
        return _Prepared(ref, raw, mail, sender_auth)

    def _record(self, uow: UnitOfWork, item: _Prepared) -> tuple[LedgerEntry, _Done]:
        """Decide and record one message in the caller's transaction (no commit)."""
        ref, raw, mail = item.ref, item.raw, item.mail
        now = self.clock()
        duplicate = uow.ledger.find_by_message_id(mail.message_id) if mail.message_id else None
        if duplicate is not None:
            entry = self._record_duplicate(uow, ref, mail, duplicate, now)
            return entry, _Done(ref, mail, None, ())
        facts = self.facts(uow, mail, item.sender_auth, now)
        decision = self.limiter.limit(uow, decide(facts), now)
        target = self.policy.folders.get(decision.outcome)
        ledger_id = uow.ledger.add(
            ref, mail.message_id, decision.outcome, decision.reasons, target, now
        )
        self.apply(uow, decision, facts, raw, ledger_id, now)
        entry = LedgerEntry(
            id=ledger_id,
            outcome=decision.outcome,
            target_folder=target,
            moved=False,
            source_key=ref.key,
        )
        return entry, _Done(ref, mail, decision, facts.classification.ignored_tags)

    def _after_commit(self, done: Sequence[_Done]) -> None:
        """Logs and the outbox nudge, once the decisions are committed."""
        queued = False
        for item in done:
            if item.decision is None:
                continue
            self._log_decision(item.ref, item.mail, item.decision, item.tags)
            queued = queued or any(
                isinstance(a, SendLink | SendReply) for a in item.decision.actions
            )
        if queued:
            self.on_outbox()

    def _record_duplicate(
        self, uow: UnitOfWork, ref: MailRef, mail: InboundMail, first: LedgerEntry, now: datetime
    ) -> LedgerEntry:
        reasons = ("duplicate_message_id",)
        entry_id = uow.ledger.add(
            ref, mail.message_id, first.outcome, reasons, first.target_folder, now
        )
        self.log.info("message.duplicate", key=ref.key, outcome=first.outcome)
        return LedgerEntry(
            id=entry_id,
            outcome=first.outcome,
            target_folder=first.target_folder,
            moved=False,
            source_key=ref.key,
        )

    def facts(
        self,
        uow: UnitOfWork,
        mail: InboundMail,
        sender_auth: SenderAuth,
        now: datetime,
        treated: Classification | None = None,
    ) -> Facts:
        """The decision's inputs; `treated`: the kind a person gave a near miss (it then
        needs no subject, and a family answering credmail's guide is not a loop)."""
        people = uow.directory.people_with_address(mail.sender) if mail.sender else []
        guardians = [p.username for p in people if p.role is Role.GUARDIAN]
        students = uow.directory.students_of(guardians) if guardians else []
        references = mail.in_reply_to + mail.references
        return Facts(
            mail=mail,
            classification=treated or classify_subject(mail.classified_subject, self.policy.rules),
            own_addresses=self.policy.own_addresses,
            references_our_mail=treated is None and uow.outbox.knows_message_id(references),
            people_on_file=tuple(people),
            linked_students=tuple(students),
            today=now.astimezone(self.policy.timezone).date(),
            sender_auth=sender_auth,
            options=self.policy.options,
            bounces_our_reply=uow.outbox.knows_message_id(mail.bounced_ids),
        )

    def apply(
        self,
        uow: UnitOfWork,
        decision: Decision,
        facts: Facts,
        raw: bytes,
        ledger_id: int,
        now: datetime,
    ) -> None:
        for action in decision.actions:
            if isinstance(action, MarkBounced):
                record_bounce(uow, action, now)
            elif isinstance(action, HoldForReview):
                item = _review_item(facts.mail, facts.classification.kind, action.reasons, raw, now)
                uow.review.add(item, ledger_id)
            else:
                known = {p.username: p for p in facts.people_on_file + facts.linked_students}
                at_sender = {facts.mail.sender: facts.people_on_file} if facts.mail.sender else {}
                self.mailer.queue(
                    uow,
                    action,
                    facts.mail.message_id,
                    now,
                    known=known,
                    known_at=at_sender,
                    ledger_id=ledger_id,
                )

    def _quarantine(self, ref: MailRef, raw: bytes, exc: Exception) -> LedgerEntry:
        with self.uow() as uow:
            entry = self._quarantine_in(uow, ref, raw, exc)
            uow.attempts.clear(ref)
            uow.commit()
        self._log_quarantine(ref, exc)
        return entry

    def _quarantine_in(
        self, uow: UnitOfWork, ref: MailRef, raw: bytes, exc: Exception
    ) -> LedgerEntry:
        """Record the message in Errori and review, in the caller's transaction."""
        now = self.clock()
        reason = _quarantine_reason(exc)
        target = self.policy.folders.get(Outcome.ERRORS)  # parses nothing: parsing may be the fault
        ledger_id = uow.ledger.add(
            ref,
            None,
            Outcome.ERRORS,
            (reason,),
            target,
            now,
            error=f"{type(exc).__name__}: {str(exc)[:300]}",
        )
        item = ReviewItem(
            id=0,
            created_at=now,
            status=ReviewStatus.PENDING,
            kind=RequestKind.UNKNOWN,
            sender=None,
            message_id=None,
            subject="",
            reasons=(reason,),
            raw=raw or ref.header,
        )
        uow.review.add(item, ledger_id)
        return LedgerEntry(
            id=ledger_id,
            outcome=Outcome.ERRORS,
            target_folder=target,
            moved=False,
            source_key=ref.key,
        )

    def _log_quarantine(self, ref: MailRef, exc: Exception) -> None:
        self.log.error(
            "message.quarantined",
            key=ref.key,
            reason=_quarantine_reason(exc),
            error_type=type(exc).__name__,
        )

    def _log_decision(
        self, ref: MailRef, mail: InboundMail, decision: Decision, tags: tuple[str, ...] = ()
    ) -> None:
        self.log.info(
            "message.handled",
            key=ref.key,
            outcome=str(decision.outcome),
            reasons=list(decision.reasons),
            actions=[type(a).__name__ for a in decision.actions],
            sender=self.tag(mail.sender),
            ignored_subject_tags=list(tags),
        )


PROCESSING_ERROR = "processing_error"
QUARANTINE_REASONS: dict[type[Exception], str] = {
    OversizeError: "oversize",
    TooManyAttempts: "too_many_attempts",
}
"""The review reason of a message that could not be handled (PROCESSING_ERROR otherwise)."""


def _quarantine_reason(exc: Exception) -> str:
    return QUARANTINE_REASONS.get(type(exc), PROCESSING_ERROR)


@dataclass(frozen=True)
class _Prepared:
    """A message parsed and its sender checked, ready for the transaction."""

    ref: MailRef
    raw: bytes
    mail: InboundMail
    sender_auth: SenderAuth


@dataclass(frozen=True)
class _Done:
    """What to log once the transaction that recorded it has committed."""

    ref: MailRef
    mail: InboundMail
    decision: Decision | None  # None: a duplicate (logged when recorded)
    tags: tuple[str, ...]


def _review_item(
    mail: InboundMail, kind: RequestKind, reasons: tuple[str, ...], raw: bytes, now: datetime
) -> ReviewItem:
    return ReviewItem(
        id=0,
        created_at=now,
        status=ReviewStatus.PENDING,
        kind=kind,
        sender=mail.sender,
        message_id=mail.message_id,
        subject=mail.subject,
        reasons=reasons,
        raw=raw,
    )
