"""Turn a send action into a queued outbox row (issuing the link first), in the caller's
transaction. The pipeline and the review desk both send through here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from credmail.core.values import Person, SendLink, SendReply
from credmail.service.links import LinkIssuer
from credmail.service.ports import UnitOfWork
from credmail.service.replies import ReplyComposer


class Mailer:
    def __init__(self, links: LinkIssuer, composer: ReplyComposer, timezone: ZoneInfo) -> None:
        self.links = links
        self.composer = composer
        self.timezone = timezone

    def queue(
        self,
        uow: UnitOfWork,
        action: SendLink | SendReply,
        in_reply_to: str | None,
        now: datetime,
        *,
        context: dict[str, Any] | None = None,
        known: Mapping[str, Person] | None = None,
        ledger_id: int | None = None,
        review_id: int | None = None,
    ) -> None:
        """`known` holds directory records the caller already has (saves a lookup)."""
        values = dict(context or {})
        account = None
        if isinstance(action, SendLink):
            person = (known or {}).get(action.username) or uow.directory.get(action.username)
            if person is None:
                raise LookupError("person vanished from the directory")
            values |= self._link_context(uow, person, action, now)
            account = (action.username, action.purpose)
        elif action.about is not None:
            values["person"] = (known or {}).get(action.about) or uow.directory.get(action.about)
        mail = self.composer.compose(action.template, action.to, values, in_reply_to, now)
        uow.outbox.add(
            mail, action.template, now, account=account, ledger_id=ledger_id, review_id=review_id
        )

    def _link_context(
        self, uow: UnitOfWork, person: Person, action: SendLink, now: datetime
    ) -> dict[str, Any]:
        issued = self.links.issue(uow, person, action.purpose, action.to, now)
        expires = issued.expires_at.astimezone(self.timezone) if issued.expires_at else None
        return {
            "person": person,
            "student": person,
            "username": person.username,
            "link": issued.url,
            "expires_at": expires.strftime("%d/%m/%Y alle %H:%M") if expires else None,
        }
