"""The benchmark's data: a 2,000-person directory and a realistic mix of mail."""

from __future__ import annotations

import csv
import io
import random
from datetime import date
from email.message import EmailMessage

from credmail.samples import AUTHSERV_ID

PEOPLE = 2000
GUARDIANS = 700  # each with one student; the students are the next 700 usernames
STUDENTS_WITH_OWN_ADDRESS = 200
STAFF = PEOPLE - 2 * GUARDIANS


def _born(today: date, years: int) -> str:
    return today.replace(year=today.year - years, day=min(today.day, 28)).isoformat()


def directory_csv(today: date) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["role", "username", "first_name", "last_name", "birth_date", "emails", "students", "class"]
    )
    for i in range(GUARDIANS):
        writer.writerow(
            [
                "guardian",
                f"G{i:04d}",
                f"Genitore{i}",
                f"Famiglia{i}",
                "",
                f"genitore{i}@famiglie.example.org",
                f"S{i:04d}",
                "",
            ]
        )
        own = f"studente{i}@studenti.example.org" if i < STUDENTS_WITH_OWN_ADDRESS else ""
        writer.writerow(
            [
                "student",
                f"S{i:04d}",
                f"Studente{i}",
                f"Famiglia{i}",
                _born(today, 11 + i % 7),
                own,
                "",
                f"{1 + i % 5}A",
            ]
        )
    for i in range(STAFF):
        role = "teacher" if i % 4 else "staff"
        writer.writerow(
            [
                role,
                f"T{i:04d}",
                f"Docente{i}",
                f"Cognome{i}",
                "",
                f"docente{i}@istitutostanga.example.org",
                "",
                "",
            ]
        )
    return out.getvalue().encode()


def _message(
    sender: str, subject: str, body: str, number: int, headers: tuple[tuple[str, str], ...] = ()
) -> bytes:
    msg = EmailMessage()
    domain = sender.rpartition("@")[2]
    msg["Authentication-Results"] = f"{AUTHSERV_ID}; dmarc=pass header.from={domain}"
    msg["From"] = sender
    msg["To"] = "segreteria@istitutostanga.edu.it"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<bench.{number}@{domain}>"
    for name, value in headers:
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes()


def request(number: int, rng: random.Random) -> bytes:
    """One credential request, drawn from the seed procedure's cases."""
    roll = rng.random()
    if roll < 0.50:
        who = rng.randrange(STAFF + GUARDIANS)
        sender = (
            f"docente{who}@istitutostanga.example.org"
            if who < STAFF
            else f"genitore{who - STAFF}@famiglie.example.org"
        )
        return _message(sender, "Richiesta credenziali", "Buongiorno, non ho SPID.", number)
    if roll < 0.75:
        sender = f"genitore{rng.randrange(GUARDIANS)}@famiglie.example.org"
        return _message(sender, "Richiesta credenziali studente", "Per mio figlio.", number)
    if roll < 0.80:
        sender = f"studente{rng.randrange(STUDENTS_WITH_OWN_ADDRESS)}@studenti.example.org"
        return _message(sender, "richiesta credenziali", "Ho perso la password.", number)
    if roll < 0.90:
        return _message(
            f"sconosciuto{number}@example.net", "Richiesta credenziali", "Salve.", number
        )
    if roll < 0.95:
        sender = f"docente{rng.randrange(STAFF)}@istitutostanga.example.org"
        return _message(sender, "Re: Richiesta credenziali", "> citato", number)
    sender = f"genitore{rng.randrange(GUARDIANS)}@famiglie.example.org"
    return _message(
        sender,
        "Richiesta credenziali",
        "Sono in ferie.",
        number,
        (("Auto-Submitted", "auto-replied"),),
    )


def ordinary(number: int, rng: random.Random) -> bytes:
    subjects = [
        "Orari di ricevimento",
        "Assenza di mio figlio",
        "Certificato medico",
        "Iscrizione gita",
        "Domanda sulla mensa",
        "Colloqui",
    ]
    sender = f"genitore{rng.randrange(GUARDIANS)}@famiglie.example.org"
    body = "Buongiorno,\n" + "vorrei sapere alcune informazioni.\n" * rng.randint(2, 30)
    return _message(sender, rng.choice(subjects), body, number)


def mailbox(total: int, seed: int = 2026) -> list[bytes]:
    """Half requests, half ordinary mail, interleaved."""
    rng = random.Random(seed)
    return [request(i, rng) if i % 2 else ordinary(i, rng) for i in range(total)]
