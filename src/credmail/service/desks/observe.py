"""What the sysadmin's monitoring reads: `/healthz` (database reachable, daemon heartbeat
fresh) and the figures behind `/metrics`, all computed from the database when asked.

The daemon's heartbeat is the time of its last successful sync (`checkpoints.synced_at`):
the watcher writes it after every sync, including the reconciliation poll that runs every
`mailbox.poll_interval_seconds` when no mail arrives, so no separate row is needed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import structlog

from credmail.service.ports import AuditFilter, Clock, UnitOfWorkFactory


@dataclass(frozen=True)
class Health:
    database: bool
    heartbeat_age_seconds: float | None
    stale_after_seconds: float

    @property
    def heartbeat_fresh(self) -> bool:
        age = self.heartbeat_age_seconds
        return age is not None and age <= self.stale_after_seconds

    @property
    def ok(self) -> bool:
        return self.database and self.heartbeat_fresh

    def as_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "database": self.database,
            "heartbeat_fresh": self.heartbeat_fresh,
            "heartbeat_age_seconds": self.heartbeat_age_seconds,
            "stale_after_seconds": self.stale_after_seconds,
        }


@dataclass(frozen=True)
class Figures:
    """The metrics' values at one moment."""

    requests: dict[tuple[str, str], int] = field(default_factory=dict)
    review_pending: int = 0
    review_deferred: int = 0  # pending, out of the queue until a later date
    outbox: dict[str, int] = field(default_factory=dict)
    last_sync_age_seconds: float | None = None
    sign_in_failures: int = 0
    breaker_tripped: bool = False


class ObserveDesk:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, stale_after: timedelta) -> None:
        self.uow, self.clock, self.stale_after = uow, clock, stale_after
        self.log = structlog.get_logger("credmail.desks.observe")

    def health(self) -> Health:
        stale = self.stale_after.total_seconds()
        try:
            with self.uow(read_only=True) as uow:
                last_sync = uow.checkpoints.last_sync()
        except Exception as exc:  # any driver error means: not reachable
            self.log.warning("health.database_unreachable", error=type(exc).__name__)
            return Health(False, None, stale)
        age = (self.clock() - last_sync).total_seconds() if last_sync else None
        return Health(True, round(age, 1) if age is not None else None, stale)

    def figures(self) -> Figures:
        now = self.clock()
        with self.uow(read_only=True) as uow:
            last_sync = uow.checkpoints.last_sync()
            return Figures(
                requests=uow.ledger.tally(),
                review_pending=uow.review.count_pending(now),
                review_deferred=uow.review.count_deferred(now),
                outbox=uow.outbox.counts(),
                last_sync_age_seconds=(now - last_sync).total_seconds() if last_sync else None,
                sign_in_failures=uow.audit.count(AuditFilter(action="sign_in.failed")),
                breaker_tripped=uow.breaker.tripped(),
            )
