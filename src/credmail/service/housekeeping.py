"""Scheduled clean-up: retention of personal data, expired link tokens within a day."""

from __future__ import annotations

import structlog

from credmail.service.pipeline import Clock
from credmail.service.ports import UnitOfWorkFactory
from credmail.service.privacy import Retention


def housekeeping(uow: UnitOfWorkFactory, clock: Clock, retention: Retention) -> dict[str, int]:
    with uow() as work:
        purged = retention.run(work, clock())
        work.commit()
    structlog.get_logger("credmail.housekeeping").info("housekeeping.done", **purged)
    return purged
