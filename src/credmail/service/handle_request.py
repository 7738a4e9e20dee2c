"""One request, one transaction: parse -> verify -> decide -> limit -> record and queue.

The decision, the ledger entry, the review item and the outgoing mail commit together.
A failure of the message itself quarantines it at once; a failure of the world (a lost
connection, a database outage) propagates so the sync is retried, until the message has
used up its attempts, which are counted in the database and so survive crashes.
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
from credmail.core.parse import parse_message
from credmail.core.privacy import AddressTagger
from credmail.core.values import (
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
from credmail.service.address_keys import exact_key
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
        self.limiter = RateLimiter(policy.limits, policy.timezone)
        self.clock = clock
        self.tag = tag
        self.is_transient = is_transient
        self.on_outbox = on_outbox
        self.log = structlog.get_logger("credmail.pipeline")

    def count_attempt(self, ref: MailRef) -> int:
        with self.uow() as uow:
            attempt = uow.attempts.bump(ref, self.clock())
            uow.commit()
        return attempt

    def process(self, ref: MailRef, attempt: int, raw: bytes | None) -> LedgerEntry:
        """`raw` is None when the body was not fetched (too large, or attempts used up)."""
        try:
            if attempt > self.policy.max_attempts:
                raise TooManyAttempts(f"{attempt - 1} attempts")
            if raw is None:
                raise OversizeError(f"{ref.size} bytes")
            return self._decide_and_record(ref, raw)
        except Exception as exc:
            if self.is_transient(exc) and attempt < self.policy.max_attempts:
                raise
            return self._quarantine(ref, raw or b"", exc)

    def _decide_and_record(self, ref: MailRef, raw: bytes) -> LedgerEntry:
        mail = parse_message(raw)
        sender_auth = self.authenticator.check(raw, mail)  # may query DNS: outside the transaction
        now = self.clock()
        with self.uow() as uow:
            duplicate = uow.ledger.find_by_message_id(mail.message_id) if mail.message_id else None
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
        self._log_decision(ref, mail, decision, facts.classification.ignored_tags)
        if any(isinstance(a, SendLink | SendReply) for a in decision.actions):
            self.on_outbox()
        return LedgerEntry(
            id=ledger_id,
            outcome=decision.outcome,
            target_folder=target,
            moved=False,
            source_key=ref.key,
        )

    def _record_duplicate(
        self, uow: UnitOfWork, ref: MailRef, mail: InboundMail, first: LedgerEntry, now: datetime
    ) -> LedgerEntry:
        reasons = ("duplicate_message_id",)
        entry_id = uow.ledger.add(
            ref, mail.message_id, first.outcome, reasons, first.target_folder, now
        )
        uow.attempts.clear(ref)
        self.log.info("message.duplicate", key=ref.key, outcome=first.outcome)
        return LedgerEntry(
            id=entry_id,
            outcome=first.outcome,
            target_folder=first.target_folder,
            moved=False,
            source_key=ref.key,
        )

    def _facts(
        self, uow: UnitOfWork, mail: InboundMail, sender_auth: SenderAuth, now: datetime
    ) -> Facts:
        people = uow.directory.people_with_address(mail.sender) if mail.sender else []
        guardians = [p.username for p in people if p.role is Role.GUARDIAN]
        students = uow.directory.students_of(guardians) if guardians else []
        return Facts(
            mail=mail,
            classification=classify_subject(mail.classified_subject, self.policy.rules),
            own_addresses=self.policy.own_addresses,
            references_our_mail=uow.outbox.knows_message_id(mail.in_reply_to + mail.references),
            people_on_file=tuple(people),
            linked_students=tuple(students),
            today=now.astimezone(self.policy.timezone).date(),
            sender_auth=sender_auth,
            options=self.policy.options,
            address_key=exact_key,
            bounces_our_reply=uow.outbox.knows_message_id(mail.bounced_ids),
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
            if isinstance(action, MarkBounced):
                record_bounce(uow, action, now)
            elif isinstance(action, HoldForReview):
                item = _review_item(facts.mail, facts.classification.kind, action.reasons, raw, now)
                uow.review.add(item, ledger_id)
            else:
                known = {p.username: p for p in facts.people_on_file + facts.linked_students}
                self.mailer.queue(
                    uow, action, facts.mail.message_id, now, known=known, ledger_id=ledger_id
                )

    def _quarantine(self, ref: MailRef, raw: bytes, exc: Exception) -> LedgerEntry:
        now = self.clock()
        reason = {OversizeError: "oversize", TooManyAttempts: "too_many_attempts"}.get(
            type(exc), "processing_error"
        )
        target = self.policy.folders.get(Outcome.ERRORS)  # parses nothing: parsing may be the fault
        with self.uow() as uow:
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
            uow.attempts.clear(ref)
            uow.commit()
        self.log.error(
            "message.quarantined", key=ref.key, reason=reason, error_type=type(exc).__name__
        )
        return LedgerEntry(
            id=ledger_id,
            outcome=Outcome.ERRORS,
            target_folder=target,
            moved=False,
            source_key=ref.key,
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
