"""Scheduled clean-up: retention of personal data, expired link tokens within a day."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from credmail.service.ports import Clock, UnitOfWorkFactory
from credmail.service.privacy import Retention


def housekeeping(
    uow: UnitOfWorkFactory,
    clock: Clock,
    retention: Retention,
    flush: Callable[[], None] | None = None,
) -> dict[str, int]:
    """`flush` runs after the purge (the SQLite WAL checkpoint: old pages leave the -wal)."""
    with uow() as work:
        purged = retention.run(work, clock())
        work.commit()
    if flush is not None:
        flush()
    structlog.get_logger("credmail.housekeeping").info("housekeeping.done", **purged)
    return purged
