"""The September mailing as a pure computation over the directory.

For every new student: the guardians and their addresses on file; one mail per guardian
address (by its key) listing each of that address's new children, each with the child's
own code and link. What cannot be sent, or deserves a look first, is a warning:
a new student with no guardian, or whose guardians have no address; a guardian with no
address; an address shared by several families; a student already of age (they follow
the adults' procedure and get no mail here). Addresses the school chose not to mail (PEC
boxes, by the caller's predicate) make skipped mails, kept apart and named in a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from credmail.core.values import Person

PURPOSE_FIRST_ACCESS = "student_first_access"
TEMPLATE_CAMPAIGN = "campaign_new_student"

AddressKey = Callable[[str], str | None]
AddressTest = Callable[[str], bool]


class Warn:
    NO_GUARDIAN = "no_guardian"
    GUARDIAN_NO_ADDRESS = "guardian_no_address"
    UNREACHABLE = "no_address"
    SHARED_ADDRESS = "shared_address"
    ADULT = "adult"
    BAD_ADDRESS = "bad_address"
    PEC_ADDRESS = "pec_address"


WARNING_LABELS = {
    Warn.NO_GUARDIAN: "new student with no guardian on file",
    Warn.GUARDIAN_NO_ADDRESS: "guardian with no address on file",
    Warn.UNREACHABLE: "new student whose guardians have no address: no mail",
    Warn.SHARED_ADDRESS: "address shared by several families",
    Warn.ADULT: "student already of age: follows the adults' procedure, no mail",
    Warn.BAD_ADDRESS: "address on file that is not a valid address",
    Warn.PEC_ADDRESS: "PEC address, not mailed ([campaign] send_to_pec = false)",
}


@dataclass(frozen=True)
class PlanWarning:
    kind: str
    subject: str  # a username, or an address for SHARED_ADDRESS
    detail: str = ""


@dataclass(frozen=True)
class PlannedMail:
    """One mail: to `address`, for `students` (usernames), from `guardians` on file."""

    address: str
    address_key: str
    students: tuple[str, ...]
    guardians: tuple[str, ...]

    def pairs(self) -> list[tuple[str, str]]:
        return [(self.address_key, student) for student in self.students]


@dataclass(frozen=True)
class Plan:
    mails: tuple[PlannedMail, ...]
    warnings: tuple[PlanWarning, ...]
    new_students: int
    people: dict[str, Person] = field(default_factory=dict, repr=False, compare=False)
    skipped: tuple[PlannedMail, ...] = ()  # to addresses the school chose not to mail

    @property
    def links(self) -> int:
        return sum(len(mail.students) for mail in self.mails)

    @property
    def reached_students(self) -> int:
        return len({s for mail in self.mails for s in mail.students})

    def warning_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for warning in self.warnings:
            counts[warning.kind] = counts.get(warning.kind, 0) + 1
        return counts

    def only(self, pairs: set[tuple[str, str]]) -> Plan:
        """The same plan restricted to these (address key, student) pairs."""
        mails = []
        for mail in self.mails:
            kept = tuple(s for s in mail.students if (mail.address_key, s) in pairs)
            if kept:
                mails.append(PlannedMail(mail.address, mail.address_key, kept, mail.guardians))
        return replace(self, mails=tuple(mails))


@dataclass
class _Draft:
    address: str
    students: list[str] = field(default_factory=list)
    guardians: set[str] = field(default_factory=set)


def build_plan(
    students: Sequence[Person],
    guardians: Iterable[Person],
    today: date,
    key: AddressKey,
    *,
    pec: AddressTest | None = None,
) -> Plan:
    """`students`: the new students; `guardians`: every guardian of any of them;
    `pec`: addresses not to mail (their mails are `skipped`, with a warning)."""
    by_student: dict[str, list[Person]] = {s.username: [] for s in students}
    guardian_list = sorted(guardians, key=lambda g: g.username)
    for guardian in guardian_list:
        for child in guardian.students:
            if child in by_student:
                by_student[child].append(guardian)
    warnings: list[PlanWarning] = []
    mails: dict[str, _Draft] = {}
    skipped: dict[str, _Draft] = {}
    silent_guardians: set[str] = set()
    for student in sorted(students, key=lambda s: s.username):
        if student.is_adult_on(today):
            warnings.append(PlanWarning(Warn.ADULT, student.username))
            continue
        own = by_student[student.username]
        if not own:
            warnings.append(PlanWarning(Warn.NO_GUARDIAN, student.username))
            continue
        reached = False
        for guardian in own:
            addresses = _addresses(guardian, key, warnings)
            if not addresses:
                silent_guardians.add(guardian.username)
            for address, address_key in addresses:
                sent = pec is None or not pec(address)
                entry = (mails if sent else skipped).setdefault(address_key, _Draft(address))
                if student.username not in entry.students:
                    entry.students.append(student.username)
                entry.guardians.add(guardian.username)
                reached = reached or sent
        if not reached:
            pec_only = any(student.username in d.students for d in skipped.values())
            detail = "PEC addresses only" if pec_only else ""
            warnings.append(PlanWarning(Warn.UNREACHABLE, student.username, detail))
    warnings += [PlanWarning(Warn.GUARDIAN_NO_ADDRESS, g) for g in sorted(silent_guardians)]
    warnings += _shared(guardian_list, key)
    warnings += [
        PlanWarning(Warn.PEC_ADDRESS, entry.address, ", ".join(sorted(entry.guardians)))
        for _key, entry in sorted(skipped.items())
    ]
    people = {p.username: p for p in [*students, *guardian_list]}
    return Plan(
        _finished(mails), tuple(_dedupe(warnings)), len(students), people, _finished(skipped)
    )


def _finished(drafts: dict[str, _Draft]) -> tuple[PlannedMail, ...]:
    return tuple(
        PlannedMail(entry.address, key, tuple(entry.students), tuple(sorted(entry.guardians)))
        for key, entry in sorted(drafts.items())
    )


def _addresses(
    guardian: Person, key: AddressKey, warnings: list[PlanWarning]
) -> list[tuple[str, str]]:
    found = []
    for address in guardian.emails:
        try:
            address_key = key(address)
        except ValueError:
            address_key = None
        if address_key is None:
            warnings.append(PlanWarning(Warn.BAD_ADDRESS, guardian.username))
            continue
        found.append((address, address_key))
    return found


def _shared(guardians: Sequence[Person], key: AddressKey) -> list[PlanWarning]:
    """Addresses used by guardians of families with no child in common."""
    families: dict[str, list[set[str]]] = {}
    for guardian in guardians:
        for address in guardian.emails:
            try:
                address_key = key(address)
            except ValueError:
                continue
            if address_key is not None:
                families.setdefault(address_key, []).append(set(guardian.students))
    found = []
    for address_key, groups in sorted(families.items()):
        count = _components(groups)
        if count > 1:
            found.append(PlanWarning(Warn.SHARED_ADDRESS, address_key, f"{count} families"))
    return found


def _components(groups: list[set[str]]) -> int:
    """How many families: guardians linked when they share a child."""
    merged: list[set[str]] = []
    for group in groups:
        overlapping = [m for m in merged if m & group]
        combined = set(group).union(*overlapping) if overlapping else set(group)
        merged = [m for m in merged if not (m & group)] + [combined]
    return len(merged)


def _dedupe(warnings: list[PlanWarning]) -> list[PlanWarning]:
    return list(dict.fromkeys(warnings))


def estimate_duration(mails: int, min_interval_seconds: float, per_day: int | None) -> timedelta:
    """How long `mails` take at the pace: one per interval, at most `per_day` a day."""
    if mails <= 0:
        return timedelta(0)
    if per_day is None or mails <= per_day:
        return timedelta(seconds=mails * min_interval_seconds)
    full_days, rest = divmod(mails, per_day)
    if rest == 0:
        full_days, rest = full_days - 1, per_day
    return timedelta(days=full_days, seconds=rest * min_interval_seconds)
