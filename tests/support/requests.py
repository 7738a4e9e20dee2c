"""Building requests with a chosen sender and authentication (shared by several tests)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

from credmail.samples import AUTHSERV_ID


def request(
    sender: str,
    subject: str = "Richiesta credenziali",
    dmarc: str | None = "pass",
    body: str = "Buongiorno.",
    ar_id: str = AUTHSERV_ID,
    **headers: str,
) -> bytes:
    msg = EmailMessage()
    if dmarc is not None:
        domain = sender.rpartition("@")[2].rstrip(">")
        msg["Authentication-Results"] = f"{ar_id}; dmarc={dmarc} header.from={domain}"
    msg["From"] = sender
    msg["To"] = "segreteria@istitutostanga.edu.it"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.net")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()
