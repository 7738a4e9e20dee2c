"""Queue one mail for the school's own people (the digest, an alert) to each address, in
the caller's transaction: composed like the replies, marked automatic, never a reply."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from credmail.service.ports import UnitOfWork
from credmail.service.reply_templates import ReplyComposer


def queue_for(
    uow: UnitOfWork,
    composer: ReplyComposer,
    template: str,
    addresses: Iterable[str],
    values: Mapping[str, Any],
    now: datetime,
) -> None:
    for to in addresses:
        mail = composer.compose(template, to, values, None, now, auto_submitted="auto-generated")
        uow.outbox.add(mail, template, now)
