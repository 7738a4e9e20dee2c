"""The limits desk: is the global circuit breaker tripped; close it."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from credmail.service.ports import Clock, UnitOfWorkFactory
from credmail.service.review import Actor, audit_entry


@dataclass(frozen=True)
class Breaker:
    tripped: bool


@dataclass(frozen=True)
class BreakerReset:
    was_tripped: bool


class LimitsDesk:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self.uow, self.clock = uow, clock
        self.log = structlog.get_logger("credmail.desks.limits")

    def show(self) -> Breaker:
        with self.uow(read_only=True) as uow:
            return Breaker(uow.breaker.tripped())

    def reset(self, actor: Actor) -> BreakerReset:
        """Close the breaker; the global hourly count restarts now."""
        actor.require("limits.reset")
        with self.uow() as uow:
            now = self.clock()
            was_tripped = uow.breaker.reset(now)
            detail = "era scattato" if was_tripped else "non era scattato"
            uow.audit.add(audit_entry(actor, now, "limits.reset", None, detail))
            uow.commit()
        self.log.debug("limits.reset", by=str(actor), was_tripped=was_tripped)
        return BreakerReset(was_tripped)
