"""Near misses in the watched folder: mail that is not an exact-subject request is read
once (subject and first lines), and a near miss is recorded, flagged for the staff with
an IMAP keyword and, in `guide` mode, answered with how to ask (never a link).

Ordinary mail is never moved, marked read or recorded (except in a source without UIDs,
where a ledger entry keeps it from being read again at every sync). A failure of one
message only skips it (ordinary mail is never quarantined); a failure of the world (the
database, the DNS) is raised, for the sync to come back to the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog

from credmail.core.addresses import address_key
from credmail.core.near_miss import NearMissRules, classify_near_miss
from credmail.core.near_miss_policy import NearMissDecision, decide_near_miss
from credmail.core.parse import parse_message
from credmail.core.values import Decision, InboundMail, MailRef, Outcome, SendReply
from credmail.service.handle_request import MessageProcessor
from credmail.service.ports import NearMissRecord, UnitOfWork

EXCERPT_CHARS = 600
NOT_NEAR_MISS = "not_near_miss"


class NearMissHandler:
    """Reads the non-request mail of a batch and records its near misses."""

    def __init__(self, processor: MessageProcessor) -> None:
        self.processor = processor
        self.policy = processor.policy.near_miss
        self.uow = processor.uow
        self.clock = processor.clock
        self.log = structlog.get_logger("credmail.near_miss")

    def check(self, items: Sequence[tuple[MailRef, bytes]], remember_all: bool) -> int:
        """Record the near misses among `items`; `remember_all` (a source without UIDs)
        also records the others, as ignored. Returns how many near misses were found."""
        found = 0
        for ref, raw in items:
            try:
                found += self._check_one(ref, raw, remember_all)
            except Exception as exc:
                if self.processor.is_transient(exc):
                    raise  # the database or the DNS is away: the sync comes back to it
                self.log.warning("near_miss.check_failed", key=ref.key, error=type(exc).__name__)
        return found

    def _check_one(self, ref: MailRef, raw: bytes, remember_all: bool) -> bool:
        rules = self.policy.rules
        assert rules is not None
        mail = parse_message(raw)
        if not _may_be_near_miss(mail, rules):
            if remember_all:
                self._remember(ref)
            return False
        sender_auth = self.processor.authenticator.check(raw, mail)  # DNS: no transaction
        with self.uow() as uow:
            now = self.clock()
            facts = self.processor.facts(uow, mail, sender_auth, now)
            decision = decide_near_miss(facts, rules, self.policy.mode, self._guided(uow, mail))
            if not decision.flag:
                if remember_all:
                    uow.ledger.add(ref, None, Outcome.IGNORED, (NOT_NEAR_MISS,), None, now)
                    uow.commit()
                return False
            self._record(uow, ref, raw, mail, decision, now)
            uow.commit()
        if decision.guide is not None:
            self.processor.on_outbox()
        return True

    def _remember(self, ref: MailRef) -> None:
        with self.uow() as uow:
            uow.ledger.add(ref, None, Outcome.IGNORED, (NOT_NEAR_MISS,), None, self.clock())
            uow.commit()

    def _guided(self, uow: UnitOfWork, mail: InboundMail) -> bool:
        key = address_key(mail.sender) if mail.sender else None
        if key is None:
            return False
        since = self.clock() - timedelta(days=self.policy.guide_days)
        return uow.near_misses.guided_since(key, since)

    def _record(
        self,
        uow: UnitOfWork,
        ref: MailRef,
        raw: bytes,
        mail: InboundMail,
        decision: NearMissDecision,
        now: datetime,
    ) -> None:
        guide, reasons = self._limited(uow, decision, now)
        ledger_id = uow.ledger.add(ref, mail.message_id, Outcome.IGNORED, reasons, None, now)
        verdict = decision.verdict
        record = NearMissRecord(
            id=0,
            folder=ref.folder,
            validity=ref.validity,
            source_key=ref.key,
            created_at=now,
            sender=mail.sender,
            message_id=mail.message_id,
            subject=mail.classified_subject,
            excerpt=(mail.text or mail.html_text)[:EXCERPT_CHARS],
            rule=verdict.rule,
            language=verdict.language,
            guided=guide is not None,
            ledger_id=ledger_id,
            raw=raw,
        )
        uow.near_misses.add(record, flag=True)
        if guide is not None:
            self.processor.mailer.queue(uow, guide, mail.message_id, now, ledger_id=ledger_id)
        self.log.info(
            "near_miss.flagged",
            key=ref.key,
            rule=verdict.rule,
            language=verdict.language,
            guided=guide is not None,
            reasons=list(reasons),
            sender=self.processor.tag(mail.sender),
        )

    def _limited(
        self, uow: UnitOfWork, decision: NearMissDecision, now: datetime
    ) -> tuple[SendReply | None, tuple[str, ...]]:
        """The guide, unless the rate limits (per address, global) hold it back."""
        guide = decision.guide
        if guide is None:
            return None, decision.reasons
        limited = self.processor.limiter.limit(uow, Decision(Outcome.ANSWERED, (), (guide,)), now)
        if guide in limited.actions:
            return guide, decision.reasons
        return None, (*decision.reasons, "guide_limited")


def _may_be_near_miss(mail: InboundMail, rules: NearMissRules) -> bool:
    """The rules without the sender's traits: those only exclude (unless the school
    wrote a flag rule about them), so a mail they leave out needs no database read."""
    if any(rule.sender and rule.action == "flag" for rule in rules.rules):
        return True
    verdict = classify_near_miss(mail.classified_subject, mail.text or mail.html_text, rules)
    return verdict.near_miss
