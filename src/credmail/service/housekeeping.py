"""Scheduled clean-up: expired link tokens go within a day."""

from __future__ import annotations

from datetime import timedelta

import structlog

from credmail.service.pipeline import Clock
from credmail.service.ports import UnitOfWorkFactory

TOKEN_GRACE = timedelta(days=1)


def housekeeping(uow: UnitOfWorkFactory, clock: Clock) -> None:
    with uow() as work:
        purged = work.tokens.purge_expired(clock() - TOKEN_GRACE)
        work.commit()
    structlog.get_logger("credmail.housekeeping").info("housekeeping.done", tokens_purged=purged)
