"""Frozen values passed between the steps of the flow."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date


class Role(enum.StrEnum):
    """A person's role in the school's directory."""

    STUDENT = "student"
    GUARDIAN = "guardian"
    TEACHER = "teacher"
    STAFF = "staff"
    HEAD = "head"


class RequestKind(enum.StrEnum):
    """What a subject line asks for."""

    ADULT = "adult"
    STUDENT = "student"
    UNKNOWN = "unknown"


class Outcome(enum.StrEnum):
    """Where a handled message ends up; each outcome has its own folder."""

    ANSWERED = "answered"
    REVIEW = "review"
    AUTOMATED = "automated"
    ERRORS = "errors"
    IGNORED = "ignored"


@dataclass(frozen=True)
class MailRef:
    """Identity of one message in a source, plus what is cheap to fetch first."""

    folder: str
    validity: int
    key: str
    size: int
    header: bytes


@dataclass(frozen=True)
class InboundMail:
    """Everything the later steps need from one parsed message."""

    message_id: str | None
    sender: str | None
    sender_display_name: str
    subject: str
    text: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_problems: tuple[str, ...]
    subject_problems: tuple[str, ...]
    automation_headers: tuple[tuple[str, str], ...]
    is_delivery_report: bool
    sender_as_written: str = ""  # the From address before folding, for the exact match
    html_text: str = ""  # the HTML part's text when a plain part exists too
    bounced_ids: tuple[str, ...] = ()  # a failure report's originals (core.bounces)
    spam_flagged: bool = False  # X-Spam-Flag: YES or X-Spam-Status: Yes
    pec: PecEnvelope | None = None  # the original inside a PEC provider's envelope

    @property
    def classified_subject(self) -> str:
        """The subject to classify: a PEC envelope's original subject, else the Subject."""
        return self.pec.subject if self.pec and self.pec.subject else self.subject


@dataclass(frozen=True)
class PecEnvelope:
    """The original message a PEC provider wrapped (postacert.eml): shown, never answered."""

    sender: str | None
    subject: str
    text: str


@dataclass(frozen=True)
class Classification:
    """The result of walking the subject rules."""

    kind: RequestKind
    is_request: bool
    reply_prefix: bool = False
    rest: str = ""
    ignored_tags: tuple[str, ...] = ()  # gateway tags stripped before matching, as written
    spam_tag: bool = False
    pec: str | None = None  # "envelope" or "receipt" when the subject says so


@dataclass(frozen=True)
class Person:
    """A directory record as the core sees it."""

    username: str
    role: Role
    first_name: str
    last_name: str
    birth_date: date | None
    emails: tuple[str, ...] = ()
    students: tuple[str, ...] = ()
    language: str | None = None  # ISO 639-1, set by the secretariat; None = Italian only
    new_student: bool = False  # flagged for the September mailing
    active: bool = True  # False once the register says the pupil left
    sex: str | None = None  # "F" or "M" from the register's export; None: unknown (neutral words)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def age_on(self, day: date) -> int | None:
        if self.birth_date is None:
            return None
        born = self.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    def is_minor_on(self, day: date) -> bool:
        age = self.age_on(day)
        return self.role is Role.STUDENT and (age is None or age < 18)

    def is_adult_on(self, day: date) -> bool:
        return not self.is_minor_on(day)


SEX_WORDS = {"m": "M", "maschio": "M", "male": "M", "f": "F", "femmina": "F", "female": "F"}


def sex_code(value: str) -> str | None:
    """A directory's or register's sex field as "M" / "F" (None when empty); ValueError
    for anything else. It only chooses the words of the replies ("lo studente" /
    "la studentessa"); unknown means neutral words, never a guess from the name."""
    text = value.strip().casefold()
    if not text:
        return None
    if text not in SEX_WORDS:
        raise ValueError(f"sex must be M or F, not {value!r}")
    return SEX_WORDS[text]


@dataclass(frozen=True)
class SenderAuth:
    """Whether the From domain was proven (DMARC, aligned DKIM), and what stood in the way."""

    authenticated: bool
    method: str = "none"
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class DecideOptions:
    """The school's choices that change decisions."""

    acknowledge_unknown: bool = False


@dataclass(frozen=True)
class Facts:
    """Frozen inputs of `decide`: the parsed mail and every record looked up for it."""

    mail: InboundMail
    classification: Classification
    own_addresses: frozenset[str]
    references_our_mail: bool
    people_on_file: tuple[Person, ...]
    linked_students: tuple[Person, ...]
    today: date
    sender_auth: SenderAuth
    options: DecideOptions = DecideOptions()
    bounces_our_reply: bool = False  # a failure report about a reply credmail sent


@dataclass(frozen=True)
class SendLink:
    """Issue a link for `username` and mail it to `to` (always an address on file)."""

    username: str
    purpose: str
    to: str
    template: str


@dataclass(frozen=True)
class SendReply:
    """Send a fixed reply to `to`: an address on file, or an authenticated sender's own
    address for the neutral acknowledgement (which reveals nothing). `context` adds
    values for the template (the repeat notice's time)."""

    template: str
    to: str
    context: tuple[tuple[str, str], ...] = ()
    about: str | None = None  # username of the person the reply addresses by name


@dataclass(frozen=True)
class HoldForReview:
    """Queue the request for the secretariat, with every reason that applied."""

    reasons: tuple[str, ...]


@dataclass(frozen=True)
class MarkBounced:
    """Our replies with these Message-IDs did not arrive: mark them, tell the secretariat."""

    message_ids: tuple[str, ...]


Action = SendLink | SendReply | HoldForReview | MarkBounced


@dataclass(frozen=True)
class Decision:
    """What to do with one message: where it goes and what to send."""

    outcome: Outcome
    reasons: tuple[str, ...] = ()
    actions: tuple[Action, ...] = field(default=())
