"""The status desk: is credmail healthy (sync fresh, delivery flowing), and what waits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from credmail.service.ports import Clock, UnitOfWorkFactory
from credmail.service.status import status


@dataclass(frozen=True)
class StatusReport:
    """`details` is the JSON view (see service.status for its keys)."""

    healthy: bool
    details: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return dict(self.details)


class StatusDesk:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        stale_after: timedelta,
        outbox_stale_after: timedelta,
    ) -> None:
        self.uow, self.clock = uow, clock
        self.stale_after, self.outbox_stale_after = stale_after, outbox_stale_after

    def report(self) -> StatusReport:
        with self.uow(read_only=True) as uow:
            details = status(uow, self.clock(), self.stale_after, self.outbox_stale_after)
        return StatusReport(bool(details["healthy"]), details)
