"""What the digest and the alerts share: the database, the reply composer, the clock and
the school's time zone, and queueing one mail to each address in the caller's
transaction (composed like the replies, marked automatic, never a reply)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from credmail.service.ports import Clock, UnitOfWork, UnitOfWorkFactory
from credmail.service.reply_templates import ReplyComposer


@dataclass(frozen=True)
class StaffMail:
    uow: UnitOfWorkFactory
    composer: ReplyComposer
    clock: Clock
    timezone: ZoneInfo

    def queue(
        self,
        uow: UnitOfWork,
        template: str,
        addresses: Iterable[str],
        values: Mapping[str, Any],
        now: datetime,
    ) -> None:
        for to in addresses:
            mail = self.composer.compose(
                template, to, values, None, now, auto_submitted="auto-generated"
            )
            uow.outbox.add(mail, template, now)
