"""Deliver the outbox: each row is marked as soon as the server answers for it.

A failure belongs to its row: whatever one row raises fails that row only. A server that
refuses our settings (no AUTH, no STARTTLS, login refused) pauses delivery instead, once,
until the next start or `credmail outbox retry`.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from credmail.core.addresses import AddressError, normalize_address
from credmail.core.values import RequestKind
from credmail.service.pacing import Pacer
from credmail.service.ports import (
    Clock,
    MailConnection,
    MailSender,
    OutboxEntry,
    OutgoingMail,
    ReviewItem,
    ReviewStatus,
    SendError,
    UnitOfWork,
    UnitOfWorkFactory,
)

Finalize = Callable[[UnitOfWork, OutboxEntry, datetime], bytes | None]
"""Turns a queued row into the bytes to send now (minting its link); None: do not send."""

LINK_VOID = "link revoked, spent or erased before sending: not sent"
_ADDRESS_LIKE = re.compile(r"""<?[^\s<>()\[\]{}"',;:]*@[^\s<>()\[\]{}"',;:]*>?""")


def redact(text: str) -> str:
    """Server messages quote addresses: anything address-like becomes `<address>`."""
    return _ADDRESS_LIKE.sub("<address>", text)


def describe(exc: BaseException) -> tuple[str, str]:
    """(error class, redacted message) of a delivery failure, for logs and the database."""
    cause = exc.__cause__ if isinstance(exc, SendError) and exc.__cause__ else exc
    return type(cause).__name__, redact(str(exc))[:400]


DELIVERY_FAILED = "delivery_failed"  # the review reason of a reply that cannot be delivered
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
    quota_paused: bool = False


class OutboxDelivery:
    """Drains due outbox rows over one connection per run."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        sender: MailSender,
        clock: Clock,
        retry: RetryPolicy,
        finalize: Finalize,
        is_transient: Callable[[BaseException], bool],
        pacer: Pacer | None = None,
    ) -> None:
        self.pacer = pacer
        self.uow = uow
        self.sender = sender
        self.clock = clock
        self.retry = retry
        self.finalize = finalize
        self.is_transient = is_transient  # database trouble: not the message's fault
        self.paused = False
        self._pause_checked = False
        self.log = structlog.get_logger("credmail.outbox")

    async def close(self) -> None:
        """Close the SMTP connection kept open between drains, if any."""
        await self.sender.close()

    async def drain(self, batch: int = 50, *, keep_open: bool = False) -> DeliveryStats:
        """Send what is due. `keep_open`: leave the SMTP connection open for the next
        drain on this event loop (the daemon's worker keeps one loop); otherwise it is
        closed before this returns."""
        try:
            return await self._drain(batch, keep_open)
        finally:
            if not keep_open:
                await self.sender.close()

    async def _drain(self, batch: int, keep_open: bool) -> DeliveryStats:
        stats = DeliveryStats()
        if not self._may_send():
            return stats
        if self.pacer is not None and self.pacer.limits.limited:
            return await self._drain_paced(self.pacer, stats, keep_open)
        if self.pacer is not None and self._wait(self.pacer) > 0:
            return stats  # paused after a quota reply
        while due := self._due(batch):
            try:
                async with self.sender.connect(keep_open) as connection:
                    self._clear_old_pause()
                    for entry in due:
                        if stats.quota_paused:  # a quota reply paused the whole outbox
                            return stats
                        await self._deliver(connection, entry, stats)
            except SendError as exc:  # the connection itself failed: retry them all later
                if exc.config:
                    self._pause(exc)
                    break
                for entry in due:
                    self._record_failure(entry, exc, stats)
                break
            if len(due) < batch or (self.pacer is not None and self._wait(self.pacer) > 0):
                break  # done, or paused (by another process, or a quota reply)
        return stats

    def _may_send(self) -> bool:
        """While paused, only `outbox retry` (which clears the stored pause) resumes."""
        if not self.paused:
            return True
        with self.uow(read_only=True) as uow:
            if uow.outbox.delivery_state().paused_at is not None:
                return False
        self.paused = False
        self.log.info("outbox.resumed")
        return True

    def _clear_old_pause(self) -> None:
        """A start resumes: once this process has connected, an older pause is over."""
        if self._pause_checked:
            return
        self._pause_checked = True
        with self.uow() as uow:
            if uow.outbox.resume():
                uow.commit()

    def _pause(self, exc: SendError) -> None:
        error_class, message = describe(exc)
        reason = f"{error_class}: {message}"
        self.paused = True
        self._pause_checked = True
        now = self.clock()
        with self.uow() as uow:
            uow.outbox.pause(now, reason)
            uow.outbox.record_error(reason, now)
            uow.commit()
        self.log.error(
            "outbox.paused",
            error_class=error_class,
            error=message,
            hint="the SMTP server refuses the [smtp] settings; fix them, then restart "
            "credmail or run `credmail outbox retry`",
        )

    async def _drain_paced(
        self, pacer: Pacer, stats: DeliveryStats, keep_open: bool
    ) -> DeliveryStats:
        """One mail at a time, each at its turn, the most urgent due one first (looked up
        again before every send, so a new reply overtakes what waits). A turn further
        away than MAX_INLINE_WAIT ends the drain; a later nudge comes back for it."""
        due = self._due(1) if self._wait(pacer) <= MAX_INLINE_WAIT else []
        if not due:
            return stats
        try:
            async with self.sender.connect(keep_open) as connection:
                self._clear_old_pause()
                while due and (wait := self._wait(pacer)) <= MAX_INLINE_WAIT:
                    await asyncio.sleep(wait)
                    due = self._due(1)
                    if due:
                        await self._deliver(connection, due[0], stats)
                        due = self._due(1)
        except SendError as exc:
            if exc.config:
                self._pause(exc)
                return stats
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
        try:
            sent = await self._send(connection, entry)
        except SendError as exc:
            await connection.reset()
            if exc.config:
                raise
            self._record_failure(entry, exc, stats)
            return
        except Exception as exc:  # e.g. ValueError for an address aiosmtplib will not send
            if self.is_transient(exc):
                raise
            await connection.reset()
            failure = SendError(str(exc), permanent=True)
            failure.__cause__ = exc
            self._record_failure(entry, failure, stats)
            return
        if sent:
            stats.sent += 1
            self.log.info("outbox.sent", outbox_id=entry.id, template=entry.template)

    async def _send(self, connection: MailConnection, entry: OutboxEntry) -> bool:
        assert entry.raw is not None and entry.recipient is not None
        mail = OutgoingMail(entry.message_id, entry.envelope_from, entry.recipient, entry.raw)
        await connection.start(mail)
        # Crash-safe, not fsynced: lost only with the machine, and then the reply is resent
        # with the same Message-ID (the window a kill has anyway); the decisions that
        # queued it were fsynced, and fsyncing them also made earlier sent marks durable.
        with self.uow(crash_safe_only=True) as uow:
            if not uow.outbox.claim(entry.id):  # sent or erased meanwhile
                await connection.reset()
                return False
            raw = self.finalize(uow, entry, self.clock())
            if raw is None:
                await connection.reset()
                uow.outbox.mark_failed(entry.id, LINK_VOID)
                uow.commit()
                self.log.warning("outbox.link_void", outbox_id=entry.id, template=entry.template)
                return False
            await connection.finish(replace(mail, raw=raw))
            uow.outbox.mark_sent(entry.id, self.clock())
            uow.commit()
        return True

    def _record_failure(self, entry: OutboxEntry, exc: SendError, stats: DeliveryStats) -> None:
        error_class, message = describe(exc)
        now = self.clock()
        paused = self.pacer.refused(str(exc), now) if self.pacer is not None else None
        with self.uow() as uow:
            if paused is not None:  # the provider's quota, not this mail: wait with the rest
                uow.outbox.mark_retry(entry.id, message, paused)
                stats.quota_paused = True
                outcome = "paused"
                self.log.warning(
                    "outbox.quota_paused", until=paused.isoformat(), reason=message[:100]
                )
            elif exc.permanent or entry.attempts + 1 >= self.retry.max_attempts:
                uow.outbox.mark_failed(entry.id, message)
                uow.review.add(_failed_delivery_item(entry, now), entry.ledger_id)
                stats.failed += 1
                outcome = "failed"
            else:
                uow.outbox.mark_retry(entry.id, message, now + self.retry.delay(entry.attempts))
                stats.retried += 1
                outcome = "retry"
            uow.outbox.record_error(f"{error_class}: {message}", now)
            uow.commit()
        self.log.warning(
            "outbox.not_sent",
            outbox_id=entry.id,
            outcome=outcome,
            permanent=exc.permanent,
            attempts=entry.attempts + 1,
            error_class=error_class,
            error=message,
        )


def _failed_delivery_item(entry: OutboxEntry, now: datetime) -> ReviewItem:
    """A permanent failure goes in front of the secretariat, who can retry or answer."""
    try:
        key = normalize_address(entry.recipient) if entry.recipient else None
    except AddressError:  # the very reason it failed: keep it off the review key
        key = None
    subject = f"Consegna non riuscita ({entry.template}, outbox #{entry.id})"
    return ReviewItem(
        id=0,
        created_at=now,
        status=ReviewStatus.PENDING,
        kind=RequestKind.UNKNOWN,
        sender=key,
        message_id=entry.message_id,
        subject=subject,
        reasons=(DELIVERY_FAILED,),
        raw=None,
    )
