"""Process the watched folder: parse -> classify -> verify -> decide -> apply, then move.

One transaction per message holds the ledger entry, the review item and the outbox rows;
the IMAP move happens only after that commit. A message that raises is quarantined.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog

from credmail.core.classify import SubjectRules, classify_subject
from credmail.core.decide import decide
from credmail.core.limits import Limits
from credmail.core.parse import parse_header_only, parse_message
from credmail.core.privacy import AddressTagger
from credmail.core.values import (
    DecideOptions,
    Decision,
    Facts,
    HoldForReview,
    InboundMail,
    MailRef,
    Outcome,
    RequestKind,
    Role,
    SenderAuth,
    SendLink,
    SendReply,
)
from credmail.service.authentication import SenderAuthenticator
from credmail.service.limiting import RateLimiter
from credmail.service.outgoing import Mailer
from credmail.service.ports import (
    FolderState,
    LedgerEntry,
    MailSource,
    MessageGone,
    ReviewItem,
    UnitOfWork,
    UnitOfWorkFactory,
)

Clock = Callable[[], datetime]


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


@dataclass
class SyncStats:
    scanned: int = 0
    handled: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.handled[outcome] = self.handled.get(outcome, 0) + 1


class Pipeline:
    """The per-folder sync and the per-message unit of work."""

    def __init__(
        self,
        policy: Policy,
        uow: UnitOfWorkFactory,
        mailer: Mailer,
        authenticator: SenderAuthenticator,
        clock: Clock,
        tag: AddressTagger,
        on_outbox: Callable[[], None] = lambda: None,
        is_transient: Callable[[BaseException], bool] = lambda exc: isinstance(exc, OSError),
    ) -> None:
        self.policy = policy
        self.uow = uow
        self.mailer = mailer
        self.authenticator = authenticator
        self.limiter = RateLimiter(policy.limits)
        self.clock = clock
        self.tag = tag
        self.on_outbox = on_outbox
        self.is_transient = is_transient
        self.log = structlog.get_logger("credmail.pipeline")

    # -- folder level -------------------------------------------------------------

    def sync(
        self, source: MailSource, should_stop: Callable[[], bool] = lambda: False
    ) -> SyncStats:
        """Handle everything new in the watched folder; safe to repeat at any time.

        `should_stop` is checked between messages, so a stop finishes the one in hand.
        """
        stats = SyncStats()
        state = source.select()
        self._complete_moves(source, state)
        after = self._start_point(source, state)
        while True:
            refs = source.scan(after, self.policy.batch_size)
            for ref in refs:
                if should_stop():
                    return stats
                stats.scanned += 1
                outcome = self.handle(source, ref)
                if outcome:
                    stats.count(str(outcome))
            if not state.ordered or not refs:
                break
            after = max(int(ref.key) for ref in refs)
            self._save_checkpoint(state, after)
        self._save_checkpoint(state, after)
        return stats

    def _start_point(self, source: MailSource, state: FolderState) -> int:
        with self.uow() as uow:
            checkpoint = uow.checkpoints.get(state.folder)
            if checkpoint and checkpoint[0] == state.validity:
                return checkpoint[1]
            after = 0
            if checkpoint is None and not self.policy.process_existing:
                after = self._skip_backlog(uow, source, state)
            elif checkpoint is not None:
                self.log.warning("mailbox.uidvalidity_changed", folder=state.folder)
            uow.checkpoints.set(state.folder, state.validity, after, self.clock())
            uow.commit()
            return after

    def _skip_backlog(self, uow: UnitOfWork, source: MailSource, state: FolderState) -> int:
        """First start: leave the mail already in the folder unanswered."""
        self.log.info("mailbox.first_start", folder=state.folder, skipped_backlog=True)
        if state.ordered:
            return max(state.uidnext - 1, 0)
        now = self.clock()
        for ref in source.scan(0, 1_000_000):
            uow.ledger.add(ref, None, Outcome.IGNORED, ("preexisting",), None, now)
        return 0

    def _save_checkpoint(self, state: FolderState, after: int) -> None:
        with self.uow() as uow:
            uow.checkpoints.set(state.folder, state.validity, after, self.clock())
            uow.commit()

    def _complete_moves(self, source: MailSource, state: FolderState) -> None:
        """Finish moves that a crash interrupted between commit and MOVE."""
        with self.uow(read_only=True) as uow:
            pending = uow.ledger.unmoved(state.folder, state.validity)
        for entry in pending:
            ref = MailRef(state.folder, state.validity, entry.source_key, 0, b"")
            self._finish_move(source, ref, entry)

    # -- message level ------------------------------------------------------------

    def handle(self, source: MailSource, ref: MailRef) -> str | None:
        """Process one message; returns its outcome, or None when it was not ours."""
        with self.uow(read_only=True) as uow:
            known = uow.ledger.find(ref)
        if known is not None:
            self._finish_move(source, ref, known)
            return None
        if not classify_subject(
            parse_header_only(ref.header).subject, self.policy.rules
        ).is_request:
            return None
        try:
            entry = self._process(source, ref)
        except MessageGone:
            self.log.info("message.gone", key=ref.key)
            return None
        self._finish_move(source, ref, entry)
        return entry.outcome

    def _process(self, source: MailSource, ref: MailRef) -> LedgerEntry:
        """Decide one request. A failure of the message itself quarantines it at once; a
        failure of the world (connection, database) propagates so the sync is retried,
        until the message has used up its attempts (counted across crashes too)."""
        attempt = self._count_attempt(ref)
        raw = b""
        try:
            if attempt > self.policy.max_attempts:
                raise TooManyAttempts(f"{attempt - 1} attempts")
            if ref.size > self.policy.max_message_bytes:
                raise OversizeError(f"{ref.size} bytes")
            raw = source.fetch(ref)
            return self._decide_and_record(ref, raw)
        except MessageGone:
            raise
        except Exception as exc:
            if self.is_transient(exc) and attempt < self.policy.max_attempts:
                raise
            return self._quarantine(ref, raw, exc)

    def _count_attempt(self, ref: MailRef) -> int:
        with self.uow() as uow:
            attempt = uow.attempts.bump(ref, self.clock())
            uow.commit()
        return attempt

    def _decide_and_record(self, ref: MailRef, raw: bytes) -> LedgerEntry:
        mail = parse_message(raw)
        sender_auth = self.authenticator.check(raw, mail)  # may query DNS: outside the transaction
        now = self.clock()
        with self.uow() as uow:
            duplicate = self._duplicate_of(uow, mail)
            if duplicate is not None:
                entry = self._record_duplicate(uow, ref, mail, duplicate, now)
                uow.commit()
                return entry
            facts = self._facts(uow, mail, sender_auth, now)
            decision = self.limiter.limit(uow, decide(facts), now)
            target = self.policy.folders.get(decision.outcome)
            ledger_id = uow.ledger.add(
                ref, mail.message_id, decision.outcome, decision.reasons, target, now
            )
            self._apply(uow, decision, facts, raw, ledger_id, now)
            uow.attempts.clear(ref)
            uow.commit()
        self._log_decision(ref, mail, decision)
        if any(isinstance(a, SendLink | SendReply) for a in decision.actions):
            self.on_outbox()
        return LedgerEntry(ledger_id, decision.outcome, target, False, ref.key)

    def _duplicate_of(self, uow: UnitOfWork, mail: InboundMail) -> LedgerEntry | None:
        if mail.message_id is None:
            return None
        return uow.ledger.find_by_message_id(mail.message_id)

    def _record_duplicate(
        self, uow: UnitOfWork, ref: MailRef, mail: InboundMail, first: LedgerEntry, now: datetime
    ) -> LedgerEntry:
        reasons = ("duplicate_message_id",)
        entry_id = uow.ledger.add(
            ref, mail.message_id, first.outcome, reasons, first.target_folder, now
        )
        self.log.info("message.duplicate", key=ref.key, outcome=first.outcome)
        return LedgerEntry(entry_id, first.outcome, first.target_folder, False, ref.key)

    def _facts(
        self, uow: UnitOfWork, mail: InboundMail, sender_auth: SenderAuth, now: datetime
    ) -> Facts:
        people = uow.directory.people_with_address(mail.sender) if mail.sender else []
        guardians = [p.username for p in people if p.role is Role.GUARDIAN]
        students = uow.directory.students_of(guardians) if guardians else []
        return Facts(
            mail=mail,
            classification=classify_subject(mail.subject, self.policy.rules),
            own_addresses=self.policy.own_addresses,
            references_our_mail=uow.outbox.knows_message_id(mail.in_reply_to + mail.references),
            people_on_file=tuple(people),
            linked_students=tuple(students),
            today=now.astimezone(self.policy.timezone).date(),
            sender_auth=sender_auth,
            options=self.policy.options,
        )

    def _apply(
        self,
        uow: UnitOfWork,
        decision: Decision,
        facts: Facts,
        raw: bytes,
        ledger_id: int,
        now: datetime,
    ) -> None:
        for action in decision.actions:
            if isinstance(action, HoldForReview):
                item = _review_item(facts.mail, facts.classification.kind, action.reasons, raw, now)
                uow.review.add(item, ledger_id)
            else:
                self.mailer.queue(uow, action, facts.mail.message_id, now, ledger_id=ledger_id)

    def _quarantine(self, ref: MailRef, raw: bytes, exc: Exception) -> LedgerEntry:
        now = self.clock()
        reason = {OversizeError: "oversize", TooManyAttempts: "too_many_attempts"}.get(
            type(exc), "processing_error"
        )
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
        target = self.policy.folders.get(Outcome.ERRORS)
        head = _safe_header(ref.header)
        with self.uow() as uow:
            ledger_id = uow.ledger.add(
                ref,
                head.message_id if head else None,
                Outcome.ERRORS,
                (reason,),
                target,
                now,
                error=error,
            )
            item = ReviewItem(
                0,
                now,
                "pending",
                RequestKind.UNKNOWN,
                head.sender if head else None,
                head.message_id if head else None,
                head.subject if head else "",
                (reason,),
                raw or ref.header,
            )
            uow.review.add(item, ledger_id)
            uow.commit()
        self.log.error(
            "message.quarantined", key=ref.key, reason=reason, error_type=type(exc).__name__
        )
        return LedgerEntry(ledger_id, Outcome.ERRORS, target, False, ref.key)

    def _finish_move(self, source: MailSource, ref: MailRef, entry: LedgerEntry) -> None:
        if entry.moved or not entry.target_folder:
            return
        source.move(ref, entry.target_folder)
        with self.uow() as uow:
            uow.ledger.mark_moved(entry.id, self.clock())
            uow.commit()

    def _log_decision(self, ref: MailRef, mail: InboundMail, decision: Decision) -> None:
        self.log.info(
            "message.handled",
            key=ref.key,
            outcome=str(decision.outcome),
            reasons=list(decision.reasons),
            actions=[type(a).__name__ for a in decision.actions],
            sender=self.tag(mail.sender),
        )


class OversizeError(Exception):
    """The message is larger than mailbox.max_message_bytes; its body is not fetched."""


class TooManyAttempts(Exception):
    """Processing this message started too often without finishing (crashes, outages)."""


def _safe_header(header: bytes) -> InboundMail | None:
    try:
        return parse_header_only(header)
    except Exception:
        return None


def _review_item(
    mail: InboundMail, kind: RequestKind, reasons: tuple[str, ...], raw: bytes, now: datetime
) -> ReviewItem:
    return ReviewItem(
        0, now, "pending", kind, mail.sender, mail.message_id, mail.subject, reasons, raw
    )
