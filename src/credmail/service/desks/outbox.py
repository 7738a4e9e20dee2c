"""The outbox desk: what is queued, sent or failed; queue a failed message again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from credmail.service.desks.base import DeskError
from credmail.service.desks.status import QuotaPause, no_pause, paused_until
from credmail.service.ports import Clock, OutboxEntry, UnitOfWorkFactory
from credmail.service.review import Actor, audit_entry


@dataclass(frozen=True)
class OutboxLine:
    """One outgoing message as the operator sees it (no body, no token)."""

    id: int
    status: str
    template: str
    recipient: str | None
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, entry: OutboxEntry) -> OutboxLine:
        return cls(
            id=entry.id,
            status=entry.status,
            template=entry.template,
            recipient=entry.recipient,
            attempts=entry.attempts,
            created_at=entry.created_at,
            next_attempt_at=entry.next_attempt_at if entry.status == "pending" else None,
            sent_at=entry.sent_at,
            last_error=entry.last_error,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "template": self.template,
            "recipient": self.recipient,
            "attempts": self.attempts,
            "created_at": self.created_at.isoformat(),
            "next_attempt_at": _iso(self.next_attempt_at),
            "sent_at": _iso(self.sent_at),
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class Retry:
    """`resumed`: delivery was paused and runs again; `requeued`: the message queued again;
    `due_now`: how many pending messages no longer wait for their backoff."""

    resumed: bool
    requeued: int | None = None
    due_now: int = 0


RETRYABLE = ("pending", "failed")


class OutboxDesk:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, quota_pause: QuotaPause = no_pause
    ) -> None:
        self.uow, self.clock, self.quota_pause = uow, clock, quota_pause
        self.log = structlog.get_logger("credmail.desks.outbox")

    def paused_until(self) -> tuple[str, str] | None:
        """(until, reason) while a provider's quota reply holds the whole outbox."""
        return paused_until(self.quota_pause, self.clock())

    def listing(self, status: str | None = None) -> list[OutboxLine]:
        with self.uow(read_only=True) as uow:
            return [OutboxLine.of(entry) for entry in uow.outbox.listing(status)]

    def counts(self) -> dict[str, int]:
        """How many messages the outbox holds in each status."""
        with self.uow(read_only=True) as uow:
            return uow.outbox.counts()

    def retry(self, entry_id: int | None, actor: Actor) -> Retry:
        """Resume a paused delivery and send now what waits for its backoff.

        Without an id every pending message is due now (once SMTP is fixed nobody should
        wait out the backoff). With an id, that pending message is due now, or that failed
        message, if its body is still held, is queued again; otherwise nothing changes (not
        even the pause).
        """
        now = self.clock()
        with self.uow() as uow:
            resumed = uow.outbox.resume()
            if entry_id is None:
                due = [entry.id for entry in uow.outbox.listing("pending")]
            else:
                entry = uow.outbox.get(entry_id)
                if entry is None or entry.raw is None or entry.status not in RETRYABLE:
                    raise DeskError(f"outbox message {entry_id} is neither pending nor failed")
                due = [entry_id] if entry.status == "pending" else []
                if entry.status == "failed":
                    uow.outbox.requeue(entry_id, now)
            for pending in due:
                uow.outbox.requeue(pending, now)  # keeps its attempts: only the wait ends
            item = f"messaggio {entry_id}" if entry_id is not None else "tutta la coda"
            uow.audit.add(audit_entry(actor, now, "outbox.retry", item))
            uow.nudge()
            uow.commit()
        self.log.debug("outbox.retry", by=str(actor), resumed=resumed, entry=entry_id)
        requeued = entry_id if entry_id is not None and not due else None
        return Retry(resumed, requeued, len(due))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
