"""Delivery status notifications (RFC 3464): which of our messages did not arrive.

A DSN is a `multipart/report` whose `message/delivery-status` part says `Action: failed`
for a recipient, and whose `message/rfc822-headers` or `message/rfc822` part carries the
original's header, with its Message-ID. Postfix, Exchange and Gmail all write this
shape. A delayed or relayed notice is not a bounce. The ids are only candidates: the
service counts those of replies credmail itself sent.
"""

from __future__ import annotations

import re
from email.message import EmailMessage, Message

_REPORT = re.compile(rb"^content-type:[ \t]*(?:\r?\n[ \t]+)?multipart/report\b", re.I | re.M)
_MSGID = re.compile(r"<[^<>\s]+>")
_FAILED = re.compile(r"^action:[ \t]*failed\b", re.I | re.M)
_ORIGINAL = ("message/rfc822-headers", "message/rfc822", "text/rfc822-headers")
MAX_BOUNCED_IDS = 5


def looks_like_report(raw_header: bytes) -> bool:
    """The header block says multipart/report: worth fetching to see whether it bounces
    a reply of ours (decided again on the full message)."""
    return _REPORT.search(raw_header) is not None


def bounced_message_ids(msg: EmailMessage) -> tuple[str, ...]:
    """The Message-IDs of the originals a failure report is about (at most a few)."""
    if msg.get_content_type() != "multipart/report":
        return ()
    parts = list(msg.walk())
    if not any(_failed(part) for part in parts):
        return ()
    found: list[str] = []
    for part in parts:
        if part.get_content_type() in _ORIGINAL:
            found += _original_ids(part)
    return tuple(dict.fromkeys(found))[:MAX_BOUNCED_IDS]


def _failed(part: Message) -> bool:
    if part.get_content_type() != "message/delivery-status":
        return False
    return _FAILED.search(_payload_text(part)) is not None


def _payload_text(part: Message) -> str:
    """A delivery-status or headers part as text: the package parses some of them into
    sub-messages, others stay a string."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n".join(str(item) for item in payload)
    if isinstance(payload, bytes):
        return payload.decode("utf-8", "replace")
    return str(payload)


def _original_ids(part: Message) -> list[str]:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(inner, Message):
        values = [str(v) for k, v in inner.raw_items() if k.lower() == "message-id"]
        return [m for value in values[:1] for m in _MSGID.findall(value)[:1]]
    text = _payload_text(part)
    head = re.split(r"\r?\n\r?\n", text, maxsplit=1)[0]
    found = re.search(r"^message-id:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>)", head, re.I | re.M)
    return [found.group(1)] if found else []
