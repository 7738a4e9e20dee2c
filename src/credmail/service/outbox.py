"""Deliver the outbox: each row is marked as soon as the server answers for it."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from credmail.core.addresses import normalize_address
from credmail.core.values import RequestKind
from credmail.service.pacing import Pacer
from credmail.service.pipeline import Clock
from credmail.service.ports import (
    MailConnection,
    MailSender,
    OutboxEntry,
    OutgoingMail,
    ReviewItem,
    SendError,
    UnitOfWorkFactory,
)

MAX_INLINE_WAIT = 5.0  # seconds a drain may sleep for the next turn


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 30
    max_seconds: float = 3600
    max_attempts: int = 50

    def delay(self, attempts: int) -> timedelta:
        """Exponential backoff with jitter (50% to 100% of the capped delay)."""
        capped = min(self.base_seconds * 2 ** min(attempts, 30), self.max_seconds)
        return timedelta(seconds=capped * (0.5 + random.random() / 2))


@dataclass
class DeliveryStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0


class OutboxDelivery:
    """Drains due outbox rows over one connection per run."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        sender: MailSender,
        clock: Clock,
        retry: RetryPolicy,
        pacer: Pacer | None = None,
    ) -> None:
        self.pacer = pacer
        self.uow = uow
        self.sender = sender
        self.clock = clock
        self.retry = retry
        self.log = structlog.get_logger("credmail.outbox")

    async def drain(self, batch: int = 50) -> DeliveryStats:
        stats = DeliveryStats()
        if self.pacer is not None and self.pacer.limits.limited:
            return await self._drain_paced(self.pacer, stats)
        if self.pacer is not None and self._wait(self.pacer) > 0:
            return stats  # paused after a quota reply
        while due := self._due(batch):
            try:
                async with self.sender.connect() as connection:
                    for entry in due:
                        if self.pacer is not None and self._wait(self.pacer) > 0:
                            return stats  # paused by a quota reply
                        await self._deliver(connection, entry, stats)
            except SendError as exc:  # the connection itself failed: retry them all later
                for entry in due:
                    self._record_failure(entry, exc, stats)
                break
            if len(due) < batch:
                break
        return stats

    async def _drain_paced(self, pacer: Pacer, stats: DeliveryStats) -> DeliveryStats:
        """One mail at a time, each at its turn, the most urgent due one first (looked up
        again before every send, so a new reply overtakes what waits). A turn further
        away than MAX_INLINE_WAIT ends the drain; a later nudge comes back for it."""
        due = self._due(1) if self._wait(pacer) <= MAX_INLINE_WAIT else []
        if not due:
            return stats
        try:
            async with self.sender.connect() as connection:
                while due and (wait := self._wait(pacer)) <= MAX_INLINE_WAIT:
                    await asyncio.sleep(wait)
                    due = self._due(1)
                    if due:
                        await self._deliver(connection, due[0], stats)
                        due = self._due(1)
        except SendError as exc:
            for entry in due:
                self._record_failure(entry, exc, stats)
        return stats

    def _wait(self, pacer: Pacer) -> float:
        now = self.clock()
        return (pacer.next_send_at(now) - now).total_seconds()

    def _due(self, batch: int) -> list[OutboxEntry]:
        with self.uow(read_only=True) as uow:
            return uow.outbox.due(self.clock(), batch)

    async def _deliver(
        self, connection: MailConnection, entry: OutboxEntry, stats: DeliveryStats
    ) -> None:
        """Envelope first; then, holding the row (and SQLite's write lock), the DATA phase
        and the `sent` mark: a crash can only resend in the time of one commit."""
        if not (entry.raw and entry.recipient):
            return
        mail = OutgoingMail(entry.message_id, entry.envelope_from, entry.recipient, entry.raw)
        try:
            await connection.start(mail)
            with self.uow() as uow:
                if uow.outbox.claim(entry.id) is None:  # sent or erased meanwhile
                    await connection.reset()
                    return
                await connection.finish(mail)
                uow.outbox.mark_sent(entry.id, self.clock())
                uow.commit()
        except SendError as exc:
            await connection.reset()
            self._record_failure(entry, exc, stats)
            return
        stats.sent += 1
        self.log.info("outbox.sent", outbox_id=entry.id, template=entry.template)

    def _record_failure(self, entry: OutboxEntry, exc: SendError, stats: DeliveryStats) -> None:
        error = str(exc)[:500]
        paused = self.pacer.refused(error, self.clock()) if self.pacer is not None else None
        with self.uow() as uow:
            if paused is not None:  # the provider's quota, not this mail: wait with the rest
                uow.outbox.mark_retry(entry.id, error, paused)
                outcome = "paused"
                self.log.warning("outbox.paused", until=paused.isoformat(), reason=error[:100])
            elif exc.permanent or entry.attempts + 1 >= self.retry.max_attempts:
                uow.outbox.mark_failed(entry.id, error)
                uow.review.add(_failed_delivery_item(entry, self.clock()), entry.ledger_id)
                stats.failed += 1
                outcome = "failed"
            else:
                next_at = self.clock() + self.retry.delay(entry.attempts)
                uow.outbox.mark_retry(entry.id, error, next_at)
                stats.retried += 1
                outcome = "retry"
            uow.commit()
        self.log.warning(
            "outbox.not_sent",
            outbox_id=entry.id,
            outcome=outcome,
            permanent=exc.permanent,
            attempts=entry.attempts + 1,
        )


def _failed_delivery_item(entry: OutboxEntry, now: datetime) -> ReviewItem:
    """A permanent failure goes in front of the secretariat, who can retry or answer."""
    key = normalize_address(entry.recipient) if entry.recipient else None
    subject = f"Consegna non riuscita ({entry.template}, outbox #{entry.id})"
    return ReviewItem(
        0,
        now,
        "pending",
        RequestKind.UNKNOWN,
        key,
        entry.message_id,
        subject,
        ("delivery_failed",),
        None,
    )
