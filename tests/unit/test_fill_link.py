"""The link goes into a queued mail at send time: the byte path (7bit/8bit bodies) gives
the same decoded text as parsing and re-serializing (issue 17)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from credmail.service.links import EXPIRY_PLACEHOLDER, LINK_PLACEHOLDER
from credmail.service.outbox.queue import _fill_plain, fill_link

LINK = "https://registro.example.org/attiva?t=abc123.def-456&x=1"
EXPIRES = "28/11/2026 alle 20:45"


def queued(body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "segreteria@example.org"
    msg["To"] = "anna@example.org"
    msg["Subject"] = "Credenziali: content-type: text/plain"
    msg.set_content(body)
    return msg.as_bytes()


def decoded(raw: bytes) -> str:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return str(msg.get_content())


BODIES = {
    "ascii (7bit)": f"Buongiorno,\n{LINK_PLACEHOLDER}\nscade il {EXPIRY_PLACEHOLDER}.\n",
    "accents (8bit)": f"Perché: {LINK_PLACEHOLDER}\nentro le {EXPIRY_PLACEHOLDER}, è così.\n",
    "long line (quoted-printable)": "à" * 100 + f" {LINK_PLACEHOLDER} {EXPIRY_PLACEHOLDER}\n",
    "no placeholder": "Gentile famiglia,\nnessun collegamento.\n",
}


@pytest.mark.parametrize("name", BODIES)
def test_the_link_and_expiry_replace_the_placeholders(name: str) -> None:
    body = BODIES[name]
    filled = fill_link(queued(body), LINK, EXPIRES)
    expected = body.replace(LINK_PLACEHOLDER, LINK).replace(EXPIRY_PLACEHOLDER, EXPIRES)
    assert decoded(filled) == expected


def test_the_byte_path_is_taken_only_for_plain_transfer_encodings() -> None:
    assert (
        _fill_plain(queued(BODIES["ascii (7bit)"]), {LINK_PLACEHOLDER: LINK}, EXPIRES) is not None
    )
    assert (
        _fill_plain(queued(BODIES["accents (8bit)"]), {LINK_PLACEHOLDER: LINK}, EXPIRES) is not None
    )
    assert (
        _fill_plain(
            queued(BODIES["long line (quoted-printable)"]), {LINK_PLACEHOLDER: LINK}, EXPIRES
        )
        is None
    )
    assert (
        _fill_plain(queued(BODIES["ascii (7bit)"]), {LINK_PLACEHOLDER: LINK + "\n"}, EXPIRES)
        is None
    )
    assert (
        _fill_plain(
            queued(BODIES["ascii (7bit)"]), {LINK_PLACEHOLDER: "https://x/" + "a" * 1000}, EXPIRES
        )
        is None
    )
