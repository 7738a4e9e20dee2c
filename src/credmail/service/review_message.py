"""The request as the reviewer sees it: its headers, its text (an HTML part's visible
text), its attachments listed (never opened) and, for a PEC envelope, the original's
sender and subject. Read from the raw message; nothing here is stored or sent."""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage

from credmail.core.html_text import visible_text
from credmail.core.mail_policy import POLICY
from credmail.core.values import PecEnvelope

SHOWN_HEADERS = ("From", "To", "Subject", "Date", "Reply-To", "Message-ID")
PEC_HEADERS = ("PEC-From", "PEC-Subject")  # a PEC envelope's original sender and subject


@dataclass(frozen=True)
class Attachment:
    """An attachment as the reviewer sees it: listed, never opened."""

    filename: str
    content_type: str
    size: int


def summary(raw: bytes) -> tuple[dict[str, str], str]:
    msg = message_from_bytes(raw, policy=POLICY)
    headers = {}
    for name in SHOWN_HEADERS:
        try:
            value = msg.get(name)
        except Exception:
            value = "(illeggibile)"
        if value is not None:
            headers[name] = str(value)
    text = ""
    if isinstance(msg, EmailMessage):
        try:
            body = msg.get_body(preferencelist=("plain",))
            if body is not None:
                text = body.get_content()
            else:
                html = msg.get_body(preferencelist=("html",))
                text = html_to_text(str(html.get_content())) if html is not None else ""
        except Exception:
            text = "(testo illeggibile)"
    return headers, str(text)[:4000]


def html_to_text(html: str) -> str:
    """The visible text of an HTML part (core.html_text), blank lines dropped."""
    lines = (" ".join(line.split()) for line in visible_text(html).splitlines())
    return "\n".join(line for line in lines if line)


def extras(raw: bytes) -> tuple[tuple[Attachment, ...], tuple[str, ...]]:
    """The attachments (name, type, size) and the Authentication-Results fields."""
    if not raw:
        return (), ()
    msg = message_from_bytes(raw, policy=POLICY)
    found: list[Attachment] = []
    if isinstance(msg, EmailMessage):
        try:
            for part in msg.iter_attachments():
                payload = part.get_payload(decode=True)
                size = len(payload) if isinstance(payload, bytes) else 0
                name = part.get_filename() or "(senza nome)"
                found.append(Attachment(str(name), part.get_content_type(), size))
        except Exception:
            found.append(Attachment("(allegati illeggibili)", "", 0))
    try:
        results = tuple(str(v) for v in msg.get_all("Authentication-Results") or [])
    except Exception:
        results = ("(illeggibile)",)
    return tuple(found), results


def with_pec(
    pec: PecEnvelope | None, headers: dict[str, str], text: str
) -> tuple[dict[str, str], str]:
    """For a PEC envelope: the original's sender, subject and text (never answered)."""
    if pec is None:
        return headers, text
    sender, subject = PEC_HEADERS
    headers = {**headers, sender: pec.sender or "(illeggibile)", subject: pec.subject}
    return headers, (pec.text or text)[:4000]
