"""Render the September campaign's plan for the sysadmin: lines for the terminal, a JSON
summary, the CSV rows, the preview of one mail, and the warning about usernames credmail
made up (shared by `campaign plan` and `campaign start`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from credmail.core.campaign import WARNING_LABELS, PlanWarning, Warn
from credmail.core.terminal import printable
from credmail.core.values import Person
from credmail.service.campaign_mail import PREVIEW_EXPIRY, PREVIEW_LINK, Preview
from credmail.service.campaigns import Started
from credmail.service.desks.campaign import PlanView, warning_note

CSV_HEADER = ("indirizzo", "studente", "nome", "genitori/tutori", "avviso")


def duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days} d"] if days else []
    return " ".join([*parts, f"{hours} h {minutes:02d} min"])


def made_up_lines(name: str, made_up: Sequence[str], mailed: int) -> list[str]:
    """The warning when mailed students have no register login code (empty when none)."""
    if not made_up:
        return []
    example = made_up[0]
    lines = [
        f"warning: {len(made_up)} of {mailed} students to mail have no register login code "
        f"on file: credmail made up their usernames (e.g. {example}); their families' mail "
        "gives no student code, only where to find it (the register's own message)",
        "  to mail the register's codes: import the register's student list with its "
        "login-code column (Codice utente/Username) and the guardians' sheet; run "
        "`credmail directory import --dry-run FILE...` first (it lists these students as "
        "renamed, not new: same person, same links), then plan again",
        f"  see the mail: credmail campaign plan {name} --preview {example}",
    ]
    if len(made_up) == mailed:
        lines.append("  `campaign start` refuses this without --without-register-codes")
    return lines


def plan_lines(name: str, view: PlanView) -> Iterator[str]:
    plan = view.plan
    yield f"campaign {name}: dry run, nothing stored or sent"
    yield (
        f"new students: {plan.new_students}; reached: {plan.reached_students}; "
        f"mails: {len(plan.mails)}; links: {plan.links}"
    )
    if plan.skipped:
        links = sum(len(mail.students) for mail in plan.skipped)
        yield f"not sent (PEC addresses): mails: {len(plan.skipped)}; links: {links}"
    yield f"estimated duration at the configured pace: {duration(view.duration)}"
    yield from made_up_lines(name, view.made_up_codes(), plan.reached_students)
    warnings = view.warning_lines()
    counts = plan.warning_counts()
    yield f"warnings: {len(warnings)}" + "".join(f"; {k} {n}" for k, n in sorted(counts.items()))
    for label, subject, detail in warnings:
        yield f"  {label}: {printable(subject, one_line=True)}" + (f" ({detail})" if detail else "")


def plan_json(name: str, view: PlanView) -> dict[str, Any]:
    plan = view.plan
    made_up = view.made_up_codes()
    return {
        "name": name,
        "new_students": plan.new_students,
        "reached_students": plan.reached_students,
        "mails": len(plan.mails),
        "links": plan.links,
        "skipped_mails": len(plan.skipped),
        "skipped_links": sum(len(mail.students) for mail in plan.skipped),
        "estimated_seconds": int(view.duration.total_seconds()),
        "made_up_codes": {
            "count": len(made_up),
            "all": bool(made_up) and len(made_up) == plan.reached_students,
            "students": made_up,
        },
        "warning_counts": plan.warning_counts(),
        "warnings": [
            {"kind": w.kind, "label": WARNING_LABELS.get(w.kind, w.kind)}
            | {"subject": w.subject, "detail": w.detail}
            for w in plan.warnings
        ],
    }


def plan_rows(view: PlanView) -> list[list[object]]:
    """The CSV rows under CSV_HEADER: each link (sent or skipped), then each warning."""
    rows: list[list[object]] = [
        [r.address, r.student, r.student_name, r.guardians, r.note] for r in view.rows()
    ]
    people = view.plan.people
    for warning in view.plan.warnings:
        if warning.kind == Warn.PEC_ADDRESS:
            continue  # its links are rows of their own above, marked as not sent
        rows.append(_warning_row(warning, people))
    return rows


# Where a warning's subject goes: an address, a guardian, or a student.
_ADDRESS_WARNINGS = (Warn.SHARED_ADDRESS,)
_GUARDIAN_WARNINGS = (Warn.GUARDIAN_NO_ADDRESS, Warn.BAD_ADDRESS)


def _warning_row(warning: PlanWarning, people: Mapping[str, Person]) -> list[object]:
    """A warning in the plan's columns, in Italian (the CSV is the secretariat's)."""
    note = warning_note(warning)
    subject = warning.subject
    person = people.get(subject)
    name = person.full_name if person else ""
    if warning.kind in _ADDRESS_WARNINGS:
        return [subject, "", "", "", note]
    if warning.kind in _GUARDIAN_WARNINGS:
        return ["", "", "", f"{name} ({subject})" if name else subject, note]
    return ["", subject, name, "", note]


def preview_lines(name: str, preview: Preview) -> Iterator[str]:
    mail = preview.mail
    yield f"campaign {name}: preview of one mail; nothing stored or sent, no link created"
    yield f"students: {', '.join(mail.students)}; guardians: {', '.join(mail.guardians)}"
    if preview.skipped:
        yield "this mail is NOT sent: PEC address ([campaign] send_to_pec = false)"
    yield f"{PREVIEW_LINK} and {PREVIEW_EXPIRY} are filled in when the mail leaves"
    yield "-" * 72
    for header, value in preview.headers():
        yield f"{header}: {value}"
    yield ""
    yield preview.body().rstrip("\n")
    yield "-" * 72


def started_lines(name: str, started: Started, when: str) -> Iterator[str]:
    info = started.campaign
    if not started.created:
        yield (
            f"campaign {name} already exists ({info.status}); nothing added "
            "(use `credmail campaign extend` for students added since)"
        )
        return
    yield f"campaign {name} stored: {started.pairs_added} links; the daemon sends from {when}"
    if started.pairs_skipped:
        yield (
            f"{started.pairs_skipped} links to PEC addresses recorded as skipped "
            "(not sent; [campaign] send_to_pec = true, then `campaign extend`, sends them)"
        )
    yield from made_up_lines(name, started.made_up_codes, started.students)[:3]
