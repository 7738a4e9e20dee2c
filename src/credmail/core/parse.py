"""Turn raw message bytes into an InboundMail value, noting every structural problem.

Every input is bounded before any regular expression or the email package sees it
(header fields, the header block, MIME nesting, display names, HTML), and every pattern
here is linear-time, so no message can stall the pipeline. Structural problems of the
whole message (header smuggling, oversized headers, too-deep MIME) are reported among
the From problems: each of them makes the sender untrustworthy.
"""

from __future__ import annotations

import email
import email.errors
import email.policy
import re
import unicodedata
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser

from credmail.core.addresses import (
    AddressError,
    is_confusable_domain,
    mixes_confusable_scripts,
    normalize_address,
)
from credmail.core.bounces import bounced_message_ids
from credmail.core.html_text import tags_to_text, without_hidden
from credmail.core.mail_policy import POLICY
from credmail.core.quoted import own_text, unquoted_html
from credmail.core.values import InboundMail, PecEnvelope

AUTOMATION_HEADERS = (
    "auto-submitted",
    "precedence",
    "x-autoreply",
    "x-autorespond",
    "x-auto-response-suppress",
    "return-path",
    "x-ricevuta",
)
_MSGID = re.compile(r"<[^<>\s]+>")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
# `"name" <addr>` or `name <addr>` with nothing else: no comment, group, backslash or second
# address; the address itself plain ASCII. Linear: the three parts cannot overlap.
_NAMED_ADDRESS = re.compile(
    r'[ \t]*(?:"[^"\\\r\n]*"|[^"<>()\[\],;:@\\\r\n]*)[ \t]*<([!-;=?-~]+)>[ \t]*'
)
_NAME_DEFECTS = {
    "encoded word inside quoted string",
    "missing trailing whitespace after encoded-word",
}
# Linear: only the one word character right before a marker can start a match.
_ADDRESS_LIKE = re.compile(r"\w\s*[(\[]at[)\]]\s*[\w-]+\.\w")
_LONE_CR = re.compile(rb"\r(?!\n)")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_CONTAINER = re.compile(rb"^content-type:[ \t]*(?:\r?\n[ \t]+)?(?:multipart|message)/", re.I | re.M)
_CONTENT_FIELD = re.compile(rb"^content-[!-9;-~]*:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*", re.I | re.M)
_FIELD_LINE = re.compile(rb"[!-9;-~]+:")
_MAX_TEXT = 20_000
_MAX_HTML = 200_000
MAX_FIELD_BYTES = 16_384
MAX_PARSED_FIELD_BYTES = 1_024  # From, Message-ID, Content-*: the email package is quadratic
MAX_HEADER_BYTES = 262_144
MAX_MIME_CONTAINERS = 50
MAX_MIME_FIELD_BYTES = 65_536  # every Content-* field of the message together
MAX_DISPLAY_NAME = 256
MAX_PARSED_BODY = 1_000_000  # the text is read from the first part; the rest is not needed


def parse_message(raw: bytes) -> InboundMail:
    """Parse bytes with the modern email policy; never raises on malformed input."""
    raw, structural = bounded(raw)
    msg = email.message_from_bytes(raw, policy=POLICY)
    assert isinstance(msg, EmailMessage)
    sender, display, from_problems = _sender(msg)
    from_problems = tuple(dict.fromkeys(structural + from_problems))
    subject, subject_problems = _subject(msg)
    return InboundMail(
        message_id=_first_msgid(_raw_values(msg, "Message-ID")),
        sender=sender,
        sender_display_name=display,
        subject=subject,
        text=_text(msg),
        in_reply_to=_msgids(_raw_values(msg, "In-Reply-To")),
        references=_msgids(_raw_values(msg, "References")),
        from_problems=from_problems,
        subject_problems=subject_problems,
        automation_headers=_automation(msg),
        is_delivery_report=msg.get_content_type() == "multipart/report",
        sender_as_written=_as_written(msg) if sender else "",
        html_text=_html_alternative(msg),
        bounced_ids=bounced_message_ids(msg),
        spam_flagged=_spam_flagged(msg),
        pec=pec_envelope(msg),
    )


def _spam_flagged(msg: EmailMessage) -> bool:
    """A spam filter marked the message (X-Spam-Flag: YES, X-Spam-Status: Yes, ...)."""
    flags = _raw_values(msg, "X-Spam-Flag")
    status = _raw_values(msg, "X-Spam-Status")
    return any(value.strip().lower() == "yes" for value in flags) or any(
        value.strip().lower().startswith("yes") for value in status
    )


def pec_envelope(msg: EmailMessage) -> PecEnvelope | None:
    """The original inside a PEC provider's envelope (X-Trasporto: posta-certificata),
    read from its message/rfc822 part (postacert.eml); None for any other message."""
    transport = [v.strip().lower() for v in _raw_values(msg, "X-Trasporto")]
    if "posta-certificata" not in transport:
        return None
    for part in msg.walk():
        if part.get_content_type() != "message/rfc822":
            continue
        try:
            inner = part.get_payload(0)
        except (IndexError, TypeError):
            continue
        if isinstance(inner, EmailMessage):
            sender, _, _ = _sender(inner)
            subject, _ = _subject(inner)
            return PecEnvelope(sender, subject, _text(inner))
    return PecEnvelope(None, "", "")


def _as_written(msg: EmailMessage) -> str:
    """The single From address as written (its domain not folded), for exact matching."""
    addresses: tuple[Address, ...] = tuple(getattr(msg["From"], "addresses", ()))
    return _clean(addresses[0].addr_spec).strip() if len(addresses) == 1 else ""


def bounded(raw: bytes) -> tuple[bytes, tuple[str, ...]]:
    """The message cut down to what may safely be parsed, and the structural problems.

    `header_smuggling`: a lone CR anywhere, a bare LF in a CRLF header block (parsers
    disagree on where such a field ends), or a second header block opening the body;
    with a lone CR the body is dropped. `header_too_long`: a field over its limit is
    dropped, the header block is cut at MAX_HEADER_BYTES. `mime_too_complex`: more than
    MAX_MIME_CONTAINERS multipart/message parts, or Content-* fields over their limits;
    the body is dropped. Without a body only the header block is parsed. Only the first
    MAX_PARSED_BODY bytes of the body are parsed at all.
    """
    header, body, eol = _split(raw)
    problems: list[str] = []
    lone_cr = _LONE_CR.search(raw) is not None
    if lone_cr or _smuggled(header, body, eol):
        problems.append("header_smuggling")
    kept, too_long = _bounded_fields(header)
    if too_long:
        problems.append("header_too_long")
    cut = len(body) > MAX_PARSED_BODY
    body = body[:MAX_PARSED_BODY]
    if _too_complex(header + body):
        problems.append("mime_too_complex")
    if not problems and not cut:
        return raw, ()
    if lone_cr or "mime_too_complex" in problems:
        body = b""
    return kept + eol + body, tuple(problems)


def header_block(raw: bytes) -> bytes:
    """The header block up to the first empty line (CRLF or LF), with its line ending."""
    return _split(raw)[0]


def _split(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """(header block with its last line ending, body, line ending of the first line)."""
    first = raw.find(b"\n")
    eol = b"\r\n" if first > 0 and raw[first - 1 : first] == b"\r" else b"\n"
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i != -1]
    if not ends:
        return raw, b"", eol
    end = min(ends)
    blank = b"\r\n\r\n" if raw.startswith(b"\r\n\r\n", end) else b"\n\n"
    cut = end + len(blank) // 2
    return raw[:cut], raw[cut + len(blank) // 2 :], eol


def _smuggled(header: bytes, body: bytes, eol: bytes) -> bool:
    """A bare LF in a CRLF header block, or a second header block."""
    if eol == b"\r\n" and _BARE_LF.search(header):
        return True
    return _header_fields_in_body(body)


def _header_fields_in_body(body: bytes) -> bool:
    """The body opens with header fields including a From: a second header block.

    What a header block cut short by a bare CR looks like once a server has rewritten
    the CR to a line ending: the signed From sits at the top of the body. Only header
    fields, folded lines and blank lines may come before it.
    """
    for line in body[:MAX_HEADER_BYTES].splitlines()[:1000]:
        if line[:5].lower() == b"from:":
            return True
        if line.strip() and line[:1] not in (b" ", b"\t") and not _FIELD_LINE.match(line):
            return False
    return False


def _too_complex(raw: bytes) -> bool:
    """Too many MIME containers (a bound on depth), or Content-* fields too long."""
    if len(_CONTAINER.findall(raw)) > MAX_MIME_CONTAINERS:
        return True
    total = 0
    for match in _CONTENT_FIELD.finditer(raw):
        size = match.end() - match.start()
        total += size
        if size > MAX_PARSED_FIELD_BYTES or total > MAX_MIME_FIELD_BYTES:
            return True
    return False


def _field_limit(field: bytes) -> int:
    name = field.partition(b":")[0].strip().lower()
    parsed = name in (b"from", b"message-id") or name.startswith(b"content-")
    return MAX_PARSED_FIELD_BYTES if parsed else MAX_FIELD_BYTES


def _bounded_fields(header: bytes) -> tuple[bytes, bool]:
    """Drop fields over their limit (cut the Subject); stop at MAX_HEADER_BYTES."""
    fields: list[list[bytes]] = []
    for line in header.splitlines(keepends=True):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1].append(line)
        else:
            fields.append([line])
    kept: list[bytes] = []
    total, dropped = 0, False
    for lines in fields:
        size, limit = sum(map(len, lines)), _field_limit(lines[0])
        if size > limit and lines[0][:8].lower() == b"subject:":  # cut, so it still classifies
            lines, size = [b"".join(lines)[:limit].rstrip(b"\r\n") + b"\n"], limit
            dropped = True
        if size > limit or total + size > MAX_HEADER_BYTES:
            dropped = True
            continue
        kept += lines
        total += size
    return (b"".join(kept) if dropped else header), dropped


def _clean(text: str) -> str:
    """Raw 8-bit bytes surface as lone surrogates; decode them as UTF-8 (or U+FFFD)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def quick_subject(raw_header: bytes) -> str:
    """The decoded Subject, cheaply (RFC 2047 only), to tell requests from other mail.

    Ten times faster than a full parse; the full parse decides again before anything
    is done, so a disagreement can only leave a message untouched or unanswered.
    """
    try:
        msg = BytesHeaderParser(policy=email.policy.compat32).parsebytes(bounded(raw_header)[0])
        value = msg.get("Subject")
        if value is None:
            return ""
        return _clean(str(make_header(decode_header(str(value)))))
    except Exception:
        return parse_header_only(raw_header).subject


def parse_header_only(raw_header: bytes) -> InboundMail:
    """Parse just a header block (the body is empty); used for the cheap first pass."""
    return parse_message(raw_header.rstrip(b"\r\n") + b"\r\n\r\n")


def _safe_str(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:
        return ""
    return "" if value is None else str(value)


def _sender(msg: EmailMessage) -> tuple[str | None, str, tuple[str, ...]]:
    try:
        fields = msg.get_all("From") or []
    except Exception:
        return None, "", ("malformed_from",)
    if not fields:
        return None, "", ("missing_from",)
    if len(fields) > 1:
        return None, "", ("repeated_from",)
    header = fields[0]
    problems: list[str] = []
    addresses: tuple[Address, ...] = tuple(getattr(header, "addresses", ()))
    if getattr(header, "defects", ()) and not _only_the_name_is_unusual(msg, header, addresses):
        problems.append("malformed_from")
    if len(addresses) != 1:
        return None, "", (*problems, "multi_address_from" if addresses else "malformed_from")
    address = addresses[0]
    if not address.username or not address.domain:
        return None, address.display_name, (*problems, "malformed_from")
    try:
        sender = normalize_address(_clean(address.addr_spec))
    except AddressError:
        return None, address.display_name, (*problems, "malformed_from")
    if not sender.partition("@")[0].isascii():
        problems.append("non_ascii_local_part")
    display = _clean(address.display_name)
    problems += display_name_problems(display)
    if is_confusable_domain(sender.partition("@")[2]):
        problems.append("confusable_domain")
    return sender, display, tuple(dict.fromkeys(problems))


def _only_the_name_is_unusual(
    msg: EmailMessage, header: object, addresses: tuple[Address, ...]
) -> bool:
    """True when the From field's defects concern only how its display name is written, in
    a field every parser splits alike (`name <addr>`): a quoted encoded-word, which some
    clients send and the parser decodes anyway, or raw UTF-8 (RFC 6532). The name is then
    judged decoded, like any other."""
    defects = getattr(header, "defects", ())
    if len(addresses) != 1 or not all(map(_name_defect, defects)):
        return False
    if "\ufffd" in _clean(addresses[0].display_name):  # 8-bit bytes that are not UTF-8
        return False
    raw = _raw_values(msg, "From")
    found = _NAMED_ADDRESS.fullmatch(raw[0]) if len(raw) == 1 else None
    return found is not None and found.group(1) == addresses[0].addr_spec


def _name_defect(defect: object) -> bool:
    if isinstance(defect, email.errors.UndecodableBytesDefect):
        return True
    return isinstance(defect, email.errors.InvalidHeaderDefect) and str(defect) in _NAME_DEFECTS


def display_name_problems(display: str) -> list[str]:
    """What makes a decoded display name deceptive; an ordinary accented name is fine.

    Too long, an @ or an address (also as "(at)", fullwidth or other look-alike @),
    control, format or bidi characters, Latin mixed with a look-alike script, or an
    encoded-word that the parser left undecoded (a mail client might still decode it).
    """
    if len(display) > MAX_DISPLAY_NAME:
        return ["display_name_too_long"]
    folded = unicodedata.normalize("NFKC", display).casefold()
    problems = []
    if "@" in folded or _ADDRESS_LIKE.search(folded):
        problems.append("display_name_address")
    if any(unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"} for char in display):
        problems.append("display_name_control")
    if mixes_confusable_scripts(display):
        problems.append("display_name_mixed_script")
    if _ENCODED_WORD.search(display):
        problems.append("display_name_encoded")
    return problems


def _subject(msg: EmailMessage) -> tuple[str, tuple[str, ...]]:
    try:
        fields = msg.get_all("Subject") or []
    except Exception:
        return "", ("malformed_subject",)
    if len(fields) > 1:
        return str(fields[0]), ("repeated_subject",)
    if not fields:
        return "", ()
    header = fields[0]
    problems = ("malformed_subject",) if getattr(header, "defects", ()) else ()
    return _clean(str(header)), problems


def _raw_values(msg: EmailMessage, name: str) -> list[str]:
    """A field's values as written: the stdlib's msg-id parser crashes on some inputs
    (IndexError on `Message-ID: <`), and the ids are found by a pattern anyway."""
    wanted = name.lower()
    return [str(value) for key, value in msg.raw_items() if key.lower() == wanted]


def _first_msgid(values: list[str]) -> str | None:
    ids = _msgids(values[:1])
    return ids[0] if ids else None


def _msgids(values: list[str]) -> tuple[str, ...]:
    found: list[str] = []
    for value in values:
        found.extend(_MSGID.findall(value))
    return tuple(found)


def _automation(msg: EmailMessage) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for name in msg:
        lowered = name.lower()
        if lowered in AUTOMATION_HEADERS or lowered.startswith("list-"):
            pairs.append((lowered, _safe_str(msg, name).strip()))
    return tuple(pairs)


def _text(msg: EmailMessage) -> str:
    """The writer's own text: the plain part, else the HTML part's text."""
    return _part_text(msg, ("plain", "html"))


def _html_alternative(msg: EmailMessage) -> str:
    """The HTML part's own text when a plain part exists too (multipart/alternative)."""
    try:
        plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    except Exception:
        return ""
    return _part_text(msg, ("html",)) if plain is not None and html is not None else ""


def _part_text(msg: EmailMessage, preference: tuple[str, ...]) -> str:
    try:
        part = msg.get_body(preferencelist=preference)
        if part is None:
            return ""
        content = part.get_content()
    except Exception:
        return ""
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        content = html_text(content)
    return own_text(_clean(content[:_MAX_TEXT]))


def html_text(content: str) -> str:
    """The visible text of an HTML body (core.html_text) up to its first quotation."""
    return tags_to_text(unquoted_html(without_hidden(content[:_MAX_HTML])))
