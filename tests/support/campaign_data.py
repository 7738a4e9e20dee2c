"""A school's September directory: new students in families with siblings, guardians with
their own, shared and missing addresses, a few students of age or with no guardian, and
returning students who must get nothing. `expected_pairs` is the plan worked out
independently of credmail (the (address, student) pairs that must each get one link)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass
class Family:
    guardians: list[tuple[str, list[str]]] = field(default_factory=list)  # (username, emails)
    children: list[str] = field(default_factory=list)  # new students
    returning: list[str] = field(default_factory=list)  # not new: no mail


@dataclass
class SchoolYear:
    families: list[Family]
    adults: list[str]  # new students already of age (in a family: a warning, no mail)
    orphans: list[str]  # new students with no guardian on file
    shared_across: list[str]  # addresses used by two families

    @property
    def new_students(self) -> int:
        return sum(len(f.children) for f in self.families) + len(self.orphans)

    @property
    def guardians(self) -> int:
        return sum(len(f.guardians) for f in self.families)

    def expected_pairs(self) -> set[tuple[str, str]]:
        pairs = set()
        for family in self.families:
            for child in family.children:
                if child in self.adults:
                    continue
                for _username, emails in family.guardians:
                    pairs |= {(email.lower(), child) for email in emails}
        return pairs

    def expected_mails(self) -> int:
        return len({address for address, _ in self.expected_pairs()})

    def csv(self, today: date, extra: str = "") -> bytes:
        minor = date(today.year - 12, 3, 15).isoformat()
        adult = date(today.year - 19, 3, 15).isoformat()
        rows = ["role,username,first_name,last_name,birth_date,emails,students,class,new"]
        for n, family in enumerate(self.families):
            for child in family.children:
                born = adult if child in self.adults else minor
                rows.append(f"student,{child},Nome{child},Cognome{n},{born},,,1A,sì")
            for child in family.returning:
                rows.append(f"student,{child},Nome{child},Cognome{n},{minor},,,2A,")
            for username, emails in family.guardians:
                kids = ";".join(family.children + family.returning)
                rows.append(
                    f"guardian,{username},Gen{username},Cognome{n},,{';'.join(emails)},{kids},,"
                )
        for orphan in self.orphans:
            rows.append(f"student,{orphan},Nome{orphan},Solo,{minor},,,1B,sì")
        return ("\n".join(rows) + "\n" + extra).encode()


def school_year(families: int, students: int, orphans: int = 5) -> SchoolYear:
    """`families` families of two guardians (so 750 give 1,500 guardians) sharing
    `students` new students (3, 3, 2, 2, 2 children a family, the last ones fewer), of whom
    `orphans` have no guardian."""
    counts = [3 if i % 5 < 2 else 2 for i in range(families)]
    excess = sum(counts) - (students - orphans)
    assert 0 <= excess <= families, "families and students do not fit"
    for i in range(families - 1, -1, -1):
        if excess and counts[i] > 1:
            counts[i], excess = counts[i] - 1, excess - 1
    made: list[Family] = []
    adults: list[str] = []
    shared: list[str] = []
    student = guardian = 0

    def next_student() -> str:
        nonlocal student
        student += 1
        return f"S{student:07d}"

    for i in range(families):
        family = Family()
        family.children = [next_student() for _ in range(counts[i])]
        if i % 10 == 3:
            family.returning = [next_student()]
        if i % 40 == 7:
            adults.append(family.children[-1])
        for parent in range(2):
            guardian += 1
            username = f"G{guardian:07d}"
            emails = [f"g{guardian}@example.org"]
            if i % 7 == 0 and parent == 1:
                emails = list(family.guardians[0][1])  # both parents on one address
            elif i % 11 == 5 and parent == 1:
                emails = []  # the second guardian has no address
            elif i % 97 == 50:
                emails = []  # nobody in the family has an address
            elif i % 50 == 20 and parent == 0 and made:
                emails = list(made[-1].guardians[0][1])  # an address of another family
                shared += emails
            family.guardians.append((username, emails))
        made.append(family)
    orphan_names = [next_student() for _ in range(orphans)]
    return SchoolYear(made, adults, orphan_names, shared)
