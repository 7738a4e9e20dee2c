"""Liveness for the sysadmin and monitoring: the last successful sync and what waits.

Unhealthy (non-zero exit) when the sync is stale, when the oldest unsent mail is older
than `outbox_stale_after`, or while delivery is paused on a configuration error.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from credmail.service.ports import UnitOfWork


def status(
    uow: UnitOfWork,
    now: datetime,
    stale_after: timedelta,
    outbox_stale_after: timedelta = timedelta(hours=1),
) -> dict[str, Any]:
    last_sync = uow.checkpoints.last_sync()
    age = (now - last_sync).total_seconds() if last_sync else None
    synced = age is not None and age <= stale_after.total_seconds()
    delivery = _delivery(uow, now, outbox_stale_after)
    return {
        "healthy": synced and delivery["delivery_ok"],
        **delivery,
        "last_sync": last_sync.isoformat() if last_sync else None,
        "last_sync_age_seconds": round(age, 1) if age is not None else None,
        "stale_after_seconds": stale_after.total_seconds(),
        "outbox": uow.outbox.counts(),
        "review_pending": uow.review.count_pending(now),  # deferred ones once due
        "review_deferred": uow.review.count_deferred(now),
        "circuit_breaker_tripped": uow.breaker.tripped(),
    }


def _delivery(uow: UnitOfWork, now: datetime, stale_after: timedelta) -> dict[str, Any]:
    oldest = uow.outbox.oldest_unsent()
    age = (now - oldest).total_seconds() if oldest else None
    state = uow.outbox.delivery_state()
    last_error = state.last_error or ""
    return {
        "delivery_ok": state.paused_at is None
        and (age is None or age <= stale_after.total_seconds()),
        "oldest_unsent_age_seconds": round(age, 1) if age is not None else None,
        "outbox_stale_after_seconds": stale_after.total_seconds(),
        "delivery_paused": state.pause_reason if state.paused_at else None,
        "last_delivery_error_class": last_error.partition(":")[0] or None,
        "last_delivery_error_at": state.last_error_at.isoformat() if state.last_error_at else None,
    }
