"""Requests shaped the way real providers deliver them: gateway tags, spam flags, PEC
envelopes and receipts, HTML-only and quoted-thread bodies, delivery status notifications.

Every builder returns CRLF bytes ready to append to a mailbox or hand to the parser.
"""

from __future__ import annotations

import base64
import email.policy
import subprocess
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import dkim

SCHOOL = "segreteria@istitutostanga.edu.it"
DATE = "Wed, 02 Sep 2026 08:00:00 +0200"
POLICY = email.policy.SMTP


def plain(
    subject: str = "Richiesta credenziali",
    sender: str = "Mario Rossi <mario.rossi@example.org>",
    body: str = "Buongiorno.\n",
    msgid: str = "<plain-1@example.org>",
    extra: tuple[tuple[str, str], ...] = (),
) -> bytes:
    msg = _head(subject, sender, msgid, extra)
    msg.set_content(body)
    return msg.as_bytes(policy=POLICY)


def _head(
    subject: str, sender: str, msgid: str, extra: tuple[tuple[str, str], ...] = ()
) -> EmailMessage:
    msg = EmailMessage()
    for name, value in extra:
        msg[name] = value
    msg["From"] = sender
    msg["To"] = SCHOOL
    msg["Subject"] = subject
    msg["Date"] = DATE
    msg["Message-ID"] = msgid
    return msg


def pec_envelope(
    inner_sender: str = "mario.rossi@pec.example.org",
    inner_subject: str = "Richiesta credenziali",
    inner_text: str = "Buongiorno, sono Mario Rossi, padre di Luca.\n",
    msgid: str = "<opec21.20260902080000.1@pec.aruba.it>",
    provider: str = "pec.aruba.it",
) -> bytes:
    """An Aruba-style envelope: the original as postacert.eml, the data as daticert.xml."""
    inner = _head(inner_subject, inner_sender, "<orig-1@pec.example.org>")
    inner.set_content(inner_text)
    outer = _head(
        f"POSTA CERTIFICATA: {inner_subject}",
        f'"Per conto di: {inner_sender}" <posta-certificata@{provider}>',
        msgid,
        (
            ("X-Trasporto", "posta-certificata"),
            ("X-Riferimento-Message-ID", "<orig-1@pec.example.org>"),
        ),
    )
    outer["Reply-To"] = inner_sender
    outer.set_content(
        "Messaggio di posta certificata\n\n"
        f'Il giorno 02/09/2026 alle ore 08:00:00 (+0200) il messaggio "{inner_subject}" '
        f'è stato inviato da "{inner_sender}" indirizzato a: {SCHOOL}\n'
        "Il messaggio originale è incluso in allegato.\n"
    )
    outer.add_attachment(inner, filename="postacert.eml")
    outer.add_attachment(
        b'<?xml version="1.0" encoding="UTF-8"?><postacert tipo="posta-certificata"/>',
        maintype="application",
        subtype="xml",
        filename="daticert.xml",
    )
    return outer.as_bytes(policy=POLICY)


def pec_receipt(prefix: str, kind: str, subject: str = "Richiesta credenziali") -> bytes:
    """A provider's receipt (accettazione, avvenuta-consegna, ...) for a message we sent."""
    return plain(
        f"{prefix}: {subject}",
        "posta-certificata@pec.aruba.it",
        "Ricevuta di " + kind + "\n",
        f"<ricevuta-{kind}@pec.aruba.it>",
        (("X-Ricevuta", kind),),
    )


# -- DKIM and ARC, as the providers sign and seal ----------------------------------------

DnsRecords = dict[str, bytes]


def generate_key(folder: Path, name: str = "key", bits: int = 2048) -> tuple[bytes, bytes]:
    """(private PEM, DNS TXT record) for a fresh RSA key, kept as folder/name.pem."""
    private = folder / f"{name}.pem"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(private), str(bits)], check=True, capture_output=True
    )
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(private), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return private.read_bytes(), b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def dns_for(records: DnsRecords) -> Callable[..., bytes | None]:
    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        return records.get(name.decode().rstrip("."))

    return lookup


def dkim_sign(raw: bytes, domain: str, key: bytes, selector: str = "sel") -> bytes:
    headers = [b"from", b"to", b"subject", b"date", b"message-id"]
    signature: bytes = dkim.sign(
        raw, selector.encode(), domain.encode(), key, include_headers=headers
    )
    return signature + raw


def arc_seal(
    raw: bytes, sealer: str, srv_id: str, results: str, key: bytes, selector: str = "arc"
) -> bytes:
    """What an intermediary does: write its Authentication-Results, then seal them in the
    next ARC set (the results must say arc=pass for a set above the first)."""
    message = f"Authentication-Results: {srv_id}; {results}\r\n".encode() + raw
    authserv_id = srv_id.split()[0].encode()  # without the version
    lines = dkim.arc_sign(message, selector.encode(), sealer.encode(), key, authserv_id)
    assert lines, "dkimpy refused to seal"
    return b"".join(lines) + message


def exchange_unattributed(raw: bytes, results: str) -> bytes:
    """Exchange Online's own field: no authserv-id, so it proves nothing."""
    return f"Authentication-Results: {results}\r\n".encode() + raw


# -- bodies as phones and webmail write them ---------------------------------------------

FAMILY = "Famiglia Bianchi <famiglia.bianchi@example.org>"
STUDENT_SUBJECT = "Richiesta credenziali studente"


def html_only(html: str, msgid: str = "<html-1@example.org>") -> bytes:
    msg = _head(STUDENT_SUBJECT, FAMILY, msgid)
    msg.set_content(html, subtype="html")
    return msg.as_bytes(policy=POLICY)


def alternative(text: str, html: str, msgid: str = "<alt-1@example.org>") -> bytes:
    msg = _head(STUDENT_SUBJECT, FAMILY, msgid)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg.as_bytes(policy=POLICY)


def family(text: str, msgid: str = "<family-1@example.org>") -> bytes:
    return plain(STUDENT_SUBJECT, FAMILY, text, msgid)


QUOTED_THREADS = {
    # name: (body, the child the writer names now or None)
    "gmail_it": (
        "Buongiorno, vorrei le credenziali.\n\n"
        "Il giorno lun 1 set 2026 alle ore 09:00 Segreteria <\n"
        "segreteria@istitutostanga.edu.it> ha scritto:\n\n"
        "> Gentile famiglia, per Giulia abbiamo inviato il link.\n",
        None,
    ),
    "thunderbird_it": (
        "Ci serve il link per Nicolò.\n\n"
        "Il 01/09/26 09:00, Segreteria ha scritto:\n"
        "> Per Giulia il link è stato inviato.\n",
        "S3",
    ),
    "outlook_separator": (
        "Buongiorno, le credenziali per favore.\n\n"
        "-----Messaggio originale-----\n"
        "Da: Segreteria <segreteria@istitutostanga.edu.it>\n"
        "Inviato: lunedì 1 settembre 2026 09:00\n"
        "Oggetto: credenziali Giulia\n\n"
        "Il link per Giulia è stato inviato.\n",
        None,
    ),
    "outlook_header_block": (
        "Grazie, ora serve anche per Nicolò.\n\n"
        "Da: Segreteria <segreteria@istitutostanga.edu.it>\n"
        "Inviato: lunedì 1 settembre 2026 09:00\n"
        "A: famiglia.bianchi@example.org\n\n"
        "Il link per Giulia è stato inviato.\n",
        "S3",
    ),
    "iphone": (
        "Le credenziali per favore\n\n"
        "Inviato da iPhone\n\n"
        "Il giorno 1 set 2026, alle ore 09:00, Segreteria ha scritto:\n\n"
        "Per Giulia abbiamo già provveduto.\n",
        None,
    ),
    "quoted_lines_only": (
        "> Per Giulia abbiamo già provveduto.\n\nE per Nicolò?\n",
        "S3",
    ),
    "english_client": (
        "Credenziali per favore.\n\n"
        "On Mon, 1 Sep 2026 at 09:00, Segreteria <segreteria@istitutostanga.edu.it> wrote:\n"
        "> Giulia\n",
        None,
    ),
    "signature": (
        "Serve il link.\n-- \nGiulia Bianchi e famiglia\n",
        None,
    ),
}


# -- delivery status notifications of our replies ------------------------------------------

REPLY_HEADERS = (
    "From: Istituto Stanga <segreteria@istitutostanga.edu.it>\r\n"
    "To: {to}\r\n"
    "Subject: Credenziali: il collegamento richiesto\r\n"
    "Message-ID: {original}\r\n"
    "Auto-Submitted: auto-replied\r\n"
)


def _dsn(head: str, notice: str, status: str, original_type: str, original: str, to: str) -> bytes:
    boundary = "=_dsn_boundary"
    returned = REPLY_HEADERS.format(to=to, original=original)
    if original_type == "message/rfc822":
        returned += "Content-Type: text/plain; charset=utf-8\r\n\r\nhttps://registro.example/x\r\n"
    text = (
        head
        + "MIME-Version: 1.0\r\n"
        + "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        + f'\tboundary="{boundary}"\r\n'
        + "\r\n"
        + f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{notice}\r\n"
        + f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n{status}\r\n"
        + f"--{boundary}\r\nContent-Type: {original_type}\r\n\r\n{returned}\r\n"
        + f"--{boundary}--\r\n"
    )
    return text.encode()


def dsn_postfix(
    original: str, to: str = "mario.rossi@example.org", action: str = "failed"
) -> bytes:
    head = (
        "From: MAILER-DAEMON@mail.istitutostanga.edu.it (Mail Delivery System)\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"To: {SCHOOL}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        f"Date: {DATE}\r\n"
        "Message-Id: <20260902060001.4F1@mail.istitutostanga.edu.it>\r\n"
    )
    notice = (
        "This is the mail system at host mail.istitutostanga.edu.it.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n"
    )
    status = (
        "Reporting-MTA: dns; mail.istitutostanga.edu.it\r\n"
        "X-Postfix-Queue-ID: 4F1\r\n\r\n"
        f"Final-Recipient: rfc822; {to}\r\n"
        f"Original-Recipient: rfc822;{to}\r\n"
        f"Action: {action}\r\n"
        "Status: 5.1.1\r\n"
        "Remote-MTA: dns; mx.example.org\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{to}>: Recipient address rejected\r\n"
    )
    return _dsn(head, notice, status, "message/rfc822", original, to)


def dsn_exchange(original: str, to: str = "mario.rossi@example.org") -> bytes:
    head = (
        "From: Microsoft Outlook <postmaster@istitutostanga.onmicrosoft.com>\r\n"
        f"To: <{SCHOOL}>\r\n"
        "Subject: Undeliverable: Credenziali: il collegamento richiesto\r\n"
        f"Date: {DATE}\r\n"
        "Message-ID: <e7b1f0c2-ndr@AM0PR01MB1234.eurprd01.prod.exchangelabs.com>\r\n"
        "X-MS-Exchange-Message-Is-Ndr:\r\n"
        "Auto-Submitted: auto-replied\r\n"
    )
    notice = "Il recapito a questi destinatari o gruppi non è riuscito:\r\n\r\n" + to + "\r\n"
    status = (
        "Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com\r\n"
        "Received-From-MTA: dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com\r\n\r\n"
        f"Final-recipient: RFC822; {to}\r\n"
        "Action: failed\r\n"
        "Status: 5.1.10\r\n"
        "Diagnostic-code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found\r\n"
    )
    return _dsn(head, notice, status, "text/rfc822-headers", original, to)


def dsn_gmail(original: str, to: str = "mario.rossi@example.org") -> bytes:
    head = (
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\n"
        f"To: {SCHOOL}\r\n"
        "Subject: Delivery Status Notification (Failure)\r\n"
        f"Date: {DATE}\r\n"
        "Message-ID: <5f1a2b3c.gmail-dsn@mx.google.com>\r\n"
        "Auto-Submitted: auto-replied\r\n"
    )
    notice = "** Address not found **\r\n\r\nYour message wasn't delivered to " + to + ".\r\n"
    status = (
        "Reporting-MTA: dns; googlemail.com\r\n"
        "Arrival-Date: Wed, 02 Sep 2026 08:00:01 -0700 (PDT)\r\n\r\n"
        f"Final-Recipient: rfc822; {to}\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "Remote-MTA: dns; gmail-smtp-in.l.google.com. (142.250.1.27, the server for the\r\n"
        " domain gmail.com.)\r\n"
        "Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does\r\n"
        " not exist.\r\n"
    )
    return _dsn(head, notice, status, "message/rfc822-headers", original, to)
