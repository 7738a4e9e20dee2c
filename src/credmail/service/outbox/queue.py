"""Turn a send action into a queued outbox row (reserving the link first), in the caller's
transaction, and fill the real link in when the mail leaves. The pipeline and the review
desk both send through here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from credmail.core.values import Person, SendLink, SendReply
from credmail.service.links import EXPIRY_PLACEHOLDER, LINK_PLACEHOLDER, LinkIssuer
from credmail.service.ports import OutboxEntry, UnitOfWork
from credmail.service.reply_templates import ReplyComposer


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
        account = selector = None
        if isinstance(action, SendReply):
            values |= dict(action.context)
        if isinstance(action, SendLink):
            person = (known or {}).get(action.username) or uow.directory.get(action.username)
            if person is None:
                raise LookupError("person vanished from the directory")
            link_values, selector = self._link_context(uow, person, action, now)
            values |= link_values
            account = (action.username, action.purpose)
        elif action.about is not None:
            values["person"] = (known or {}).get(action.about) or uow.directory.get(action.about)
        mail = self.composer.compose(action.template, action.to, values, in_reply_to, now)
        uow.outbox.add(
            mail,
            action.template,
            now,
            account=account,
            ledger_id=ledger_id,
            review_id=review_id,
            token_selector=selector,
        )

    def _link_context(
        self, uow: UnitOfWork, person: Person, action: SendLink, now: datetime
    ) -> tuple[dict[str, Any], str | None]:
        issued = self.links.issue(uow, person, action.purpose, action.to, now)
        expires = EXPIRY_PLACEHOLDER if issued.selector else self._when(issued.expires_at)
        values = {
            "person": person,
            "student": person,
            "username": person.username,
            "link": issued.url,
            "expires_at": expires,
        }
        return values, issued.selector

    def _when(self, moment: datetime | None) -> str | None:
        local = moment.astimezone(self.timezone) if moment else None
        return local.strftime("%d/%m/%Y alle %H:%M") if local else None

    def finalize(self, uow: UnitOfWork, entry: OutboxEntry, now: datetime) -> bytes | None:
        """The bytes to send now: a queued link is minted here, valid from `now`.
        None when the link was revoked, spent or erased meanwhile: the mail must not go."""
        if entry.raw is None or entry.token_selector is None:
            return entry.raw
        issued = self.links.mint(uow, entry.token_selector, now)
        if issued is None:
            return None
        return fill_link(entry.raw, issued.url, self._when(issued.expires_at) or "")


def fill_link(raw: bytes, link: str, expires_at: str) -> bytes:
    """Replace the placeholders in the text body (decoded, so the transfer encoding of
    the stored copy does not matter). A body stored as 7bit or 8bit text, the usual case,
    takes the replacement in its bytes: no parse and no new serialization."""
    fast = _fill_plain(raw, link, expires_at)
    if fast is not None:
        return fast
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    body = str(msg.get_content())
    body = body.replace(LINK_PLACEHOLDER, link).replace(EXPIRY_PLACEHOLDER, expires_at)
    msg.set_content(body)
    return msg.as_bytes()


_PLAIN_ENCODINGS = (b"\ncontent-transfer-encoding: 7bit", b"\ncontent-transfer-encoding: 8bit")
MAX_LINE_BYTES = 998  # RFC 5322


def _fill_plain(raw: bytes, link: str, expires_at: str) -> bytes | None:
    """The byte replacement when it is exactly the decoded one: a single text/plain part
    in 7bit or 8bit, ASCII values, and lines that stay within RFC 5322's limit."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    if not separator:
        head, separator, body = raw.partition(b"\n\n")
    header = head.lower()
    if not (
        separator
        and b"\ncontent-type: text/plain" in header
        and any(encoding in header for encoding in _PLAIN_ENCODINGS)
        and link.isascii()
        and expires_at.isascii()
        and "\n" not in link + expires_at
    ):
        return None
    body = body.replace(LINK_PLACEHOLDER.encode(), link.encode())
    body = body.replace(EXPIRY_PLACEHOLDER.encode(), expires_at.encode())
    if max((len(line) for line in body.splitlines()), default=0) > MAX_LINE_BYTES:
        return None
    return head + separator + body
