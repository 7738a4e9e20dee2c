"""The campaign mail as the composer renders it: one function for the real send and for
the preview, so what the secretariat reads in `campaign plan --preview` cannot drift from
what a family receives. Also what the plan says about the codes the mail would carry.

The preview shows one planned mail with visible placeholders where the personal link and
its expiry go (both are created when the mail leaves): it is composed like a queued mail
(keyed link placeholders, so a right-to-left section lays them out the same) and filled in
by the send's own `fill_links`. It reads the directory only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email import message_from_bytes
from email.message import EmailMessage

from credmail.core.campaign import TEMPLATE_CAMPAIGN, Plan, PlannedMail
from credmail.core.mail_policy import POLICY
from credmail.core.values import Person
from credmail.service.links import KEYED_LINK
from credmail.service.outbox.queue import Mailer, fill_links, spoken_languages
from credmail.service.ports import OutgoingMail
from credmail.service.register_import import is_register_reference

PREVIEW_LINK = "[collegamento personale, creato all'invio]"
PREVIEW_EXPIRY = "[data di scadenza, fissata all'invio]"
PREVIEW_HEADERS = ("From", "To", "Subject", "Content-Language", "Auto-Submitted")


def compose_campaign_mail(
    mailer: Mailer,
    school: Mapping[str, str],
    address: str,
    students: Sequence[tuple[Person, str]],
    expires: str | None,
    guardians: Sequence[Person],
    now: datetime,
) -> OutgoingMail:
    """One mail to `address` for these (student, link text) pairs: Italian first, then
    the languages of the `guardians` it goes to, in the order given (by username);
    Italian only when a translation is missing. `school`: the configured values the mail
    names (front_desk_hours, request_address)."""
    listed = [
        {
            "first_name": person.first_name,
            "last_name": person.last_name,
            "full_name": person.full_name,
            "sex": person.sex,
            "username": person.username,
            "link": link,
        }
        for person, link in students
    ]
    context = {
        **school,
        "students": listed,
        "student": listed[0],
        "expires_at": expires,
        "reader": guardians[0] if len(guardians) == 1 else None,  # greeted by name
    }
    return mailer.composer.compose(
        TEMPLATE_CAMPAIGN,
        address,
        context,
        None,
        now,
        languages=spoken_languages(guardians),
        translated={"expires_at": mailer.plain_expiry(expires)},
        auto_submitted="auto-generated",
    )


def preview_links(count: int) -> dict[str, str]:
    """Keyed link placeholders (as a queued mail holds) -> the text the preview shows."""
    return {KEYED_LINK.format(selector=format(n, "x")): PREVIEW_LINK for n in range(1, count + 1)}


def filled_preview(queued: OutgoingMail, links: Mapping[str, str]) -> OutgoingMail:
    """A composed mail with its link and expiry placeholders filled as the send fills
    them, with the preview's placeholders instead of a link and a date."""
    return replace(queued, raw=fill_links(queued.raw, links, PREVIEW_EXPIRY, PREVIEW_EXPIRY))


@dataclass(frozen=True)
class Preview:
    """One planned mail rendered; `skipped`: the campaign will not send it (a PEC box)."""

    mail: PlannedMail
    message: OutgoingMail
    skipped: bool

    def parsed(self) -> EmailMessage:
        msg = message_from_bytes(self.message.raw, policy=POLICY)
        assert isinstance(msg, EmailMessage)
        return msg

    def headers(self) -> list[tuple[str, str]]:
        msg = self.parsed()
        return [(name, str(msg[name])) for name in PREVIEW_HEADERS if msg[name] is not None]

    def body(self) -> str:
        return str(self.parsed().get_content())


class NothingToPreview(LookupError):
    """No planned mail goes to, or is about, what was asked for."""


def chosen_mail(plan: Plan, who: str | None, key: str | None) -> tuple[PlannedMail, bool]:
    """The first mail of the plan (`who` None), or the first to the address whose key is
    `key`, or naming the student or guardian `who`; True when it is a skipped one."""
    candidates = [(mail, False) for mail in plan.mails] + [(mail, True) for mail in plan.skipped]
    for mail, skipped in candidates:
        if who is None or mail.address_key == key or who in (*mail.students, *mail.guardians):
            return mail, skipped
    if not candidates:
        raise NothingToPreview("the plan has no mail to preview")
    raise NothingToPreview(
        f"no mail of the plan goes to or is about {who!r} "
        "(give a new student's or a guardian's username, or an address of the plan)"
    )


def made_up_codes(plan: Plan) -> list[str]:
    """The students the plan mails whose username credmail made up (the register's files
    had no login code): the mail cannot give their families the register's code."""
    mailed = dict.fromkeys(s for mail in plan.mails for s in mail.students)
    return sorted(s for s in mailed if is_register_reference(s))


def no_codes_refusal(plan: Plan) -> str | None:
    """Why a start is refused when not one mailed student has a register login code."""
    made_up = made_up_codes(plan)
    if not made_up or len(made_up) < plan.reached_students:
        return None
    return (
        f"none of the {len(made_up)} students this campaign would mail has a register "
        f"login code: credmail made up their usernames (e.g. {made_up[0]}), so no family "
        "would get the student code. Import the register's student list with its "
        "login-code column (Codice utente/Username) first (`credmail directory import`), "
        "or start with --without-register-codes to send anyway"
    )
