"""Turn a send action into a queued outbox row (reserving the link first), in the caller's
transaction, and fill the real link in when the mail leaves. The pipeline and the review
desk both send through here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from credmail.core.addresses import address_key
from credmail.core.mail_policy import POLICY
from credmail.core.values import Person, SendLink, SendReply
from credmail.service.links import (
    EXPIRY_PLACEHOLDER,
    KEYED_LINK,
    KEYED_LINK_PATTERN,
    LINK_PLACEHOLDER,
    PLAIN_EXPIRY_PLACEHOLDER,
    LinkIssuer,
)
from credmail.service.ports import ORIGIN_APPROVAL, ORIGIN_REQUEST, OutboxEntry, UnitOfWork
from credmail.service.reply_templates import MAX_LINE_BYTES, ReplyComposer, set_text


@dataclass(frozen=True)
class MailPreview:
    """A reply as its recipient will read it (the text of every language it carries)."""

    to: str
    subject: str
    text: str


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
        known_at: Mapping[str, Sequence[Person]] | None = None,
        ledger_id: int | None = None,
        review_id: int | None = None,
    ) -> None:
        """`known` holds directory records the caller already has, `known_at` the people
        on file at an address (normalized) it already looked up: each saves a lookup."""
        translated: dict[str, Any] = {}
        account = selector = None
        if isinstance(action, SendLink):
            person = (known or {}).get(action.username) or uow.directory.get(action.username)
            if person is None:
                raise LookupError("person vanished from the directory")
            origin = ORIGIN_REQUEST if review_id is None else ORIGIN_APPROVAL
            link_values, selector = self._link_context(uow, person, action, now, origin)
            values = dict(context or {}) | link_values
            translated["expires_at"] = self.plain_expiry(link_values["expires_at"])
            account = (action.username, action.purpose)
            about: Person | None = person
        else:
            values, about = _reply_values(uow, action, context, known)
        languages = _address_readers(uow, action.to, about, values, known_at)
        values.setdefault("automatic", review_id is None)  # else the secretariat decided
        mail = self.composer.compose(
            action.template,
            action.to,
            values,
            in_reply_to,
            now,
            languages=languages,
            translated=translated,
        )
        uow.outbox.add(
            mail,
            action.template,
            now,
            account=account,
            ledger_id=ledger_id,
            review_id=review_id,
            token_selector=selector,
        )

    def preview(
        self, uow: UnitOfWork, reply: SendReply, now: datetime, context: dict[str, Any]
    ) -> MailPreview:
        """The mail `queue` would write for `reply`, written nowhere: staff read it first."""
        values, about = _reply_values(uow, reply, context, None)
        languages = _address_readers(uow, reply.to, about, values)
        mail = self.composer.compose(
            reply.template, reply.to, values, None, now, languages=languages
        )
        return MailPreview(reply.to, str(_parsed(mail.raw)["Subject"]), _body_text(mail.raw))

    def _link_context(
        self, uow: UnitOfWork, person: Person, action: SendLink, now: datetime, origin: str
    ) -> tuple[dict[str, Any], str | None]:
        issued = self.links.issue(uow, person, action.purpose, action.to, now, origin=origin)
        expires = EXPIRY_PLACEHOLDER if issued.selector else self._when(issued.expires_at)
        values = {
            "person": person,
            "student": person,
            "username": person.username,
            "link": issued.url,
            "expires_at": expires,
        }
        return values, issued.selector

    def when(self, moment: datetime | None) -> str | None:
        """A moment as the mail says it, in the school's time zone."""
        return self._when(moment)

    def _when(self, moment: datetime | None, plain: bool = False) -> str | None:
        """Italian "28/11/2026 alle 11:00"; `plain` (translations) "28/11/2026 11:00"."""
        local = moment.astimezone(self.timezone) if moment else None
        pattern = "%d/%m/%Y %H:%M" if plain else "%d/%m/%Y alle %H:%M"
        return local.strftime(pattern) if local else None

    @staticmethod
    def plain_expiry(italian: str | None) -> str | None:
        """The expiry as the translations say it: no Italian "alle" (a keyed link's
        placeholder becomes the plain placeholder, filled in when the mail leaves)."""
        if italian == EXPIRY_PLACEHOLDER:
            return PLAIN_EXPIRY_PLACEHOLDER
        return italian.replace(" alle ", " ") if italian else italian

    def finalize(self, uow: UnitOfWork, entry: OutboxEntry, now: datetime) -> bytes | None:
        """The bytes to send now: a queued link is minted here, valid from `now`.
        None when the link was revoked, spent or erased meanwhile: the mail must not go."""
        if entry.raw is None or entry.token_selector is None:
            return entry.raw
        body = _body_text(entry.raw)
        keyed = list(dict.fromkeys(KEYED_LINK_PATTERN.findall(body)))
        links: dict[str, str] = {}
        expires: datetime | None = None
        purpose = None if keyed else entry.purpose  # a keyed mail's row names no purpose
        for selector in keyed or [entry.token_selector]:
            issued = self.links.mint(uow, selector, now, purpose)
            if issued is None:  # one void link (erased, revoked): the mail must not go
                return None
            placeholder = KEYED_LINK.format(selector=selector) if keyed else LINK_PLACEHOLDER
            links[placeholder] = issued.url
            expires = issued.expires_at
        italian, plain = self._when(expires) or "", self._when(expires, plain=True) or ""
        return fill_links(entry.raw, links, italian, plain)


def _reply_values(
    uow: UnitOfWork,
    reply: SendReply,
    context: dict[str, Any] | None,
    known: Mapping[str, Person] | None,
) -> tuple[dict[str, Any], Person | None]:
    """A reply's template values, and the person on file it is about (if any)."""
    values = dict(context or {}) | dict(reply.context)
    if reply.about is None:
        return values, None
    about = (known or {}).get(reply.about) or uow.directory.get(reply.about)
    values["person"] = about
    return values, about


def fill_link(raw: bytes, link: str, expires_at: str, plain_expires_at: str = "") -> bytes:
    """`fill_links` for the one link of a reply."""
    return fill_links(raw, {LINK_PLACEHOLDER: link}, expires_at, plain_expires_at)


def fill_links(
    raw: bytes, links: Mapping[str, str], expires_at: str, plain_expires_at: str = ""
) -> bytes:
    """Replace the placeholders in the text body (decoded, so the transfer encoding of
    the stored copy does not matter). A body stored as 7bit or 8bit text, the usual case,
    takes the replacement in its bytes: no parse, no new serialization, headers kept."""
    fast = _fill_plain(raw, links, expires_at, plain_expires_at)
    if fast is not None:
        return fast
    msg = _parsed(raw)
    return _filled(msg, str(msg.get_content()), links, expires_at, plain_expires_at)


def _body_text(raw: bytes) -> str:
    """The text body: from the bytes when stored as 7bit or 8bit, else decoded."""
    plain = _plain_text(raw)
    return plain[2].decode("utf-8", "replace") if plain else str(_parsed(raw).get_content())


def _parsed(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=POLICY)
    assert isinstance(msg, EmailMessage)
    return msg


def _filled(
    msg: EmailMessage,
    body: str,
    links: Mapping[str, str],
    expires_at: str,
    plain_expires_at: str = "",
) -> bytes:
    """The body with its links and expiry filled in; Content-Language survives it."""
    languages = msg["Content-Language"]
    for placeholder, link in links.items():
        body = body.replace(placeholder, link)
    body = body.replace(EXPIRY_PLACEHOLDER, expires_at)
    set_text(msg, body.replace(PLAIN_EXPIRY_PLACEHOLDER, plain_expires_at or expires_at))
    if languages is not None:
        del msg["Content-Language"]
        msg["Content-Language"] = str(languages)
    return msg.as_bytes()


def _address_readers(
    uow: UnitOfWork,
    address: str,
    about: Person | None,
    values: dict[str, Any],
    known_at: Mapping[str, Sequence[Person]] | None = None,
) -> tuple[str, ...]:
    """Set `reader` (greeted by name when exactly one person reads `address`) and return
    the readers' languages."""
    readers = readers_at(uow, address, about, known_at)
    values.setdefault("reader", readers[0] if len(readers) == 1 else None)
    return spoken_languages(readers)


def readers_at(
    uow: UnitOfWork,
    address: str,
    about: Person | None,
    known_at: Mapping[str, Sequence[Person]] | None = None,
) -> list[Person]:
    """Who reads a mail or page sent to `address`: of the people on file there, the
    person it is about when that person is one of them, else (a student's link) the
    student's guardians among them, else all of them."""
    key = address_key(address)
    if key is None:
        return []
    found = (known_at or {}).get(key)
    people = list(uow.directory.people_with_address(key) if found is None else found)
    if about is None:
        return people
    if about.username in {p.username for p in people}:
        return [p for p in people if p.username == about.username]
    return [p for p in people if about.username in p.students] or people


def languages_at(
    uow: UnitOfWork,
    address: str,
    about: Person | None,
    known_at: Mapping[str, Sequence[Person]] | None = None,
) -> tuple[str, ...]:
    """The languages (besides Italian) of the readers at `address` (`readers_at`). Never
    guessed: only the `language` the secretariat set."""
    return spoken_languages(readers_at(uow, address, about, known_at))


def spoken_languages(people: Iterable[Person]) -> tuple[str, ...]:
    """The languages (besides Italian) the secretariat set for these people, each once,
    in their order."""
    found = (p.language.strip().lower() for p in people if p.language)
    return tuple(dict.fromkeys(code for code in found if code and code != "it"))


_PLAIN_ENCODINGS = (b"\ncontent-transfer-encoding: 7bit", b"\ncontent-transfer-encoding: 8bit")


def _plain_text(raw: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(head, separator, body) of a single text/plain part stored as 7bit or 8bit (its
    placeholders are visible in the bytes), else None."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    if not separator:
        head, separator, body = raw.partition(b"\n\n")
    header = head.lower()
    if not (
        separator
        and b"\ncontent-type: text/plain" in header
        and any(encoding in header for encoding in _PLAIN_ENCODINGS)
    ):
        return None
    return head, separator, body


def _fill_plain(
    raw: bytes, links: Mapping[str, str], expires_at: str, plain_expires_at: str = ""
) -> bytes | None:
    """The byte replacement when it is exactly the decoded one: a plain 7bit or 8bit body,
    ASCII values, and lines that stay within RFC 5322's limit."""
    parts = _plain_text(raw)
    values = {**links, EXPIRY_PLACEHOLDER: expires_at}
    values[PLAIN_EXPIRY_PLACEHOLDER] = plain_expires_at or expires_at
    if parts is None or not all(v.isascii() and "\n" not in v for v in values.values()):
        return None
    head, separator, body = parts
    for placeholder, value in values.items():
        body = body.replace(placeholder.encode(), value.encode())
    if max((len(line) for line in body.splitlines()), default=0) > MAX_LINE_BYTES:
        return None
    return head + separator + body
