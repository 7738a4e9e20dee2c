"""The near-miss corpus (tests/near_miss_corpus) measured in `guide` mode.

Each mail is written as real bytes and parsed (so the quote and signature cutting runs),
its sender made a guardian, a teacher or a stranger as labelled, and passed through the
pure near-miss decision. A mail counts as answered when the guide reply would be sent.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from credmail.core.near_miss import NearMissRules
from credmail.core.near_miss_policy import decide_near_miss
from credmail.core.parse import parse_message
from credmail.core.values import Classification, Facts, Person, RequestKind, Role, SenderAuth
from credmail.near_miss_rules import load_near_miss_rules

CORPUS = Path(__file__).resolve().parent.parent / "near_miss_corpus"
LANGUAGES = ("it", "en", "es", "fr", "ro", "sq", "uk", "zh", "ar")
SCHOOL = "segreteria@istitutostanga.edu.it"
TODAY = date(2026, 12, 7)


@dataclass(frozen=True)
class Mail:
    id: str
    lang: str
    near_miss: bool
    sender: str
    subject: str
    body: str
    headers: tuple[tuple[str, str], ...] = ()
    part: str = "dev"


def load_corpus(corpus: Path = CORPUS) -> list[Mail]:
    mails: list[Mail] = []
    for path in sorted(corpus.glob("*.toml")):
        part = path.name.partition("_")[0]  # holdout, dev or late (README.md there)
        for row in tomllib.loads(path.read_text("utf-8"))["mail"]:
            mails.append(_mail(row, part))
    return mails


def _mail(row: dict[str, Any], part: str) -> Mail:
    headers = tuple((str(k), str(v)) for k, v in row.get("headers", {}).items())
    return Mail(
        row["id"],
        row["lang"],
        bool(row["near_miss"]),
        row.get("sender", "family"),
        row.get("subject", ""),
        row.get("body", ""),
        headers,
        part,
    )


def raw_bytes(mail: Mail, sender: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = SCHOOL
    msg["Subject"] = mail.subject
    msg["Message-ID"] = f"<{mail.id}@corpus.example>"
    for name, value in mail.headers:
        msg[name] = value
    msg.set_content(mail.body)
    return msg.as_bytes()


def _people(kind: str, address: str) -> tuple[Person, ...]:
    if kind == "family":
        return (Person("g.family", Role.GUARDIAN, "Anna", "Rossi", None, (address,)),)
    if kind == "staff":
        return (Person("t.staff", Role.TEACHER, "Carlo", "Conti", None, (address,)),)
    return ()


def facts_for(mail: Mail) -> Facts:
    address = SCHOOL if mail.sender == "school" else f"{mail.id}@famiglie.example"
    parsed = parse_message(raw_bytes(mail, address))
    return Facts(
        mail=parsed,
        classification=Classification(RequestKind.UNKNOWN, False),
        own_addresses=frozenset({SCHOOL}),
        references_our_mail=False,
        people_on_file=_people(mail.sender, address),
        linked_students=(),
        today=TODAY,
        sender_auth=SenderAuth(True, "dmarc"),
    )


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, expected: bool, answered: bool) -> None:
        if expected and answered:
            self.tp += 1
        elif answered:
            self.fp += 1
        elif expected:
            self.fn += 1
        else:
            self.tn += 1

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass
class Report:
    scores: dict[tuple[str, str], Score] = field(default_factory=dict)  # (part, lang)
    rules: Counter[str] = field(default_factory=Counter)  # rule that fired, all mails
    wrong: list[tuple[str, str, bool]] = field(default_factory=list)  # id, rule, expected

    def score(self, part: str | None = None, lang: str | None = None) -> Score:
        total = Score()
        for (p, code), s in self.scores.items():
            if part in (None, p) and lang in (None, code):
                total.tp, total.fp = total.tp + s.tp, total.fp + s.fp
                total.fn, total.tn = total.fn + s.fn, total.tn + s.tn
        return total


def measure(mails: list[Mail], rules: NearMissRules | None = None) -> Report:
    rules = rules or load_near_miss_rules(None)
    report = Report()
    for mail in mails:
        decision = decide_near_miss(facts_for(mail), rules, "guide", guided_recently=False)
        answered = decision.guide is not None
        report.scores.setdefault((mail.part, mail.lang), Score()).add(mail.near_miss, answered)
        report.rules[decision.rule] += 1
        if answered != mail.near_miss:
            report.wrong.append((mail.id, decision.rule, mail.near_miss))
    return report


def table(report: Report) -> str:
    """The per-language table the README shows (Markdown)."""
    lines = [
        "| language | part | mails | near misses | precision | recall |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for part in ("holdout", "late", "dev", None):
        for lang in (*LANGUAGES, None):
            s = report.score(part, lang)
            mails = s.tp + s.fp + s.fn + s.tn
            if not mails:
                continue
            lines.append(
                f"| {lang or 'all'} | {part or 'all'} | {mails} | {s.tp + s.fn} "
                f"| {s.precision:.3f} | {s.recall:.3f} |"
            )
    return "\n".join(lines)
