"""Liveness for the sysadmin and monitoring: the last successful sync and what waits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from credmail.service.ports import UnitOfWork


def status(uow: UnitOfWork, now: datetime, stale_after: timedelta) -> dict[str, Any]:
    last_sync = uow.checkpoints.last_sync()
    age = (now - last_sync).total_seconds() if last_sync else None
    return {
        "healthy": age is not None and age <= stale_after.total_seconds(),
        "last_sync": last_sync.isoformat() if last_sync else None,
        "last_sync_age_seconds": round(age, 1) if age is not None else None,
        "stale_after_seconds": stale_after.total_seconds(),
        "outbox": uow.outbox.counts(),
        "review_pending": uow.review.count_pending(),
        "circuit_breaker_tripped": uow.breaker.tripped(),
    }
