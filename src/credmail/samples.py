"""Sample directory and mail covering every case; used by the demo and the end-to-end tests.

Birth dates are relative to `today`, so minors stay minors whatever the year.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from credmail.service.csv_export import CsvWriter

SCHOOL = "segreteria@istitutostanga.edu.it"
AUTHSERV_ID = "mx.istitutostanga.edu.it"  # the school's receiving server, trusted in the demo


def _born(today: date, years: int) -> str:
    try:
        return today.replace(year=today.year - years).isoformat()
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28).isoformat()


def directory_csv(today: date) -> bytes:
    """A small school: guardians, their children, staff, an adult student."""
    rows = [
        ("guardian", "G1001", "Mario", "Rossi", "", "mario.rossi@example.org", "S2001", ""),
        ("student", "S2001", "Luca", "Rossi", _born(today, 14), "", "", "2B"),
        (
            "guardian",
            "G1002",
            "Anna",
            "Bianchi",
            "",
            "famiglia.bianchi@example.org",
            "S2002;S2003",
            "",
        ),
        (
            "guardian",
            "G1003",
            "Paolo",
            "Bianchi",
            "",
            "famiglia.bianchi@example.org",
            "S2002;S2003",
            "",
        ),
        ("student", "S2002", "Giulia", "Bianchi", _born(today, 12), "", "", "1A"),
        ("student", "S2003", "Marco", "Bianchi", _born(today, 16), "", "", "3C"),
        (
            "student",
            "S2004",
            "Sara",
            "Verdi",
            _born(today, 15),
            "sara.verdi@studenti.example.org",
            "",
            "2A",
        ),
        (
            "student",
            "S2005",
            "Davide",
            "Neri",
            _born(today, 19),
            "davide.neri@example.org",
            "",
            "5B",
        ),
        ("guardian", "G1005", "Elena", "Neri", "", "elena.neri@example.org", "S2005", ""),
        ("teacher", "T3001", "Giovanna", "Esposito", "", "g.esposito@example.org", "", ""),
        ("staff", "A4001", "Franco", "Gallo", "", "franco.gallo@example.org", "", ""),
    ]
    out = io.StringIO()
    writer = CsvWriter(out, lineterminator="\n")  # constant cells: nothing to neutralise
    writer.writerow(
        ["role", "username", "first_name", "last_name", "birth_date", "emails", "students", "class"]
    )
    writer.writerows(rows)
    return out.getvalue().encode()


@dataclass(frozen=True)
class Sample:
    """One inbound message and what credmail should do with it."""

    name: str
    sender: str
    subject: str
    body: str
    expected: str  # answered | review | automated | untouched
    reply: str | None = None  # template of the reply, if any
    reasons: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    dmarc: str | None = "pass"  # what the school's server recorded for the From domain

    def to_bytes(self, when: datetime | None = None) -> bytes:
        msg = EmailMessage()
        if self.dmarc is not None:
            domain = self.sender.rpartition("@")[2].rstrip(">").lower()
            msg["Authentication-Results"] = (
                f"{AUTHSERV_ID}; dmarc={self.dmarc} header.from={domain}"
            )
        msg["From"] = self.sender
        msg["To"] = SCHOOL
        msg["Subject"] = self.subject
        msg["Date"] = format_datetime(when or datetime.now(UTC))
        msg["Message-ID"] = make_msgid(idstring=self.name, domain="mail.example.org")
        for name, value in self.headers:
            msg[name] = value
        msg.set_content(self.body)
        return msg.as_bytes()


SAMPLES: tuple[Sample, ...] = (
    Sample(
        "adult-guardian",
        "Mario Rossi <mario.rossi@example.org>",
        "Richiesta credenziali",
        "Buongiorno, non ho SPID. Grazie.",
        "answered",
        "link_adult",
    ),
    Sample(
        "teacher",
        "giovanna esposito <G.Esposito@Example.org>",
        "richiesta credenziali",
        "Salve, sono una nuova docente.",
        "answered",
        "link_adult",
    ),
    Sample(
        "student-one-child",
        "mario.rossi@example.org",
        "Richiesta credenziali studente",
        "Per mio figlio, grazie.",
        "answered",
        "link_student",
    ),
    Sample(
        "student-named-child",
        "Anna Bianchi <famiglia.bianchi@example.org>",
        "Richiesta credenziali studente - Bianchi Giulia 1A",
        "Grazie.",
        "answered",
        "link_student",
    ),
    Sample(
        "student-unnamed-child",
        "famiglia.bianchi@example.org",
        "«Richiesta credenziali studente»",
        "Buongiorno.",
        "review",
        reasons=("ambiguous_student",),
    ),
    Sample(
        "shared-address-named",
        "famiglia.bianchi@example.org",
        "RICHIESTA CREDENZIALI",
        "Sono Paolo Bianchi, vorrei le mie credenziali.",
        "answered",
        "link_adult",
    ),
    Sample(
        "shared-address-unnamed",
        "famiglia.bianchi@example.org",
        "richiesta credenziali",
        "Buongiorno.",
        "review",
        reasons=("ambiguous_person",),
    ),
    Sample(
        "minor-own-address",
        "sara.verdi@studenti.example.org",
        "richiesta credenziali",
        "Ho perso la password.",
        "answered",
        "minor_procedure",
    ),
    Sample(
        "adult-student",
        "davide.neri@example.org",
        "Richiesta credenziali",
        "Sono maggiorenne.",
        "answered",
        "link_adult",
    ),
    Sample(
        "guardian-of-adult-student",
        "elena.neri@example.org",
        "Richiesta credenziali studente",
        "Per Davide.",
        "review",
        reasons=("adult_student",),
    ),
    Sample(
        "teacher-asks-student",
        "g.esposito@example.org",
        "Richiesta credenziali studente",
        "Per un mio alunno.",
        "review",
        reasons=("not_guardian",),
    ),
    Sample(
        "unknown-sender",
        "sconosciuto@example.net",
        "Richiesta credenziali",
        "Salve.",
        "review",
        reasons=("unknown_sender",),
    ),
    Sample(
        "display-name-spoof",
        '"mario.rossi@example.org" <attacker@evil.example>',
        "Richiesta credenziali",
        "Mandate il link qui.",
        "review",
        reasons=("display_name_address", "unknown_sender"),
    ),
    Sample(
        "forged-from",
        "Mario Rossi <mario.rossi@example.org>",
        "Richiesta credenziali",
        "Mandate il link.",
        "review",
        reasons=("unauthenticated_sender",),
        dmarc="fail",
    ),
    Sample(
        "reply-to-attacker",
        "franco.gallo@example.org",
        "Richiesta credenziali",
        "Rispondete pure all'altro indirizzo.",
        "answered",
        "link_adult",
        headers=(("Reply-To", "attacker@evil.example"),),
    ),
    Sample(
        "reply-prefix",
        "mario.rossi@example.org",
        "Re: Richiesta credenziali",
        "> testo citato",
        "review",
        reasons=("reply_prefix",),
    ),
    Sample(
        "auto-reply",
        "mario.rossi@example.org",
        "Richiesta credenziali",
        "Sono in ferie fino al 3.",
        "automated",
        headers=(("Auto-Submitted", "auto-replied"),),
    ),
    Sample(
        "mailing-list",
        "lista@example.org",
        "richiesta credenziali studente",
        "Newsletter.",
        "automated",
        headers=(("List-Id", "<news.example.org>"),),
    ),
    Sample(
        "ordinary-mail",
        "mario.rossi@example.org",
        "Orari di ricevimento",
        "Quando riceve la prof.ssa Esposito?",
        "untouched",
    ),
    Sample(
        "ordinary-mail-similar",
        "mario.rossi@example.org",
        "Richiesta credenzialità",
        "Non è una richiesta.",
        "untouched",
    ),
)
