"""The same pupil or guardian under a new username: a person credmail once filed under a
made-up reference (`alunno-5256302`, `alunno-cf-…`, `tutore-cf-…`: the files then had no
login code) whom the files now give the register's own code is renamed, not added again.

A pupil is the same when the made-up reference of its pupil id or tax code is on file as a
student; a guardian when the reference of its tax code is on file as a guardian. Pure: the
builder's people and the usernames on file in, the renames (old -> new) and the problems out.
"""

from __future__ import annotations

from collections.abc import Iterator

from credmail.core.values import Role
from credmail.service.register_rows import (
    Builder,
    guardian_reference,
    student_reference,
)


def find_renames(b: Builder) -> dict[str, str]:
    """Old username on file -> the username the files now give the same person. A new
    username already on file is never taken: the person stays as it is, with a problem."""
    in_files = set(b.students) | set(b.guardians)
    renames: dict[str, str] = {}
    for username, olds, role, file, line in _candidates(b):
        old = next((o for o in olds if b.on_file.get(o) == role), None)
        if old is None or old in in_files or old in renames:
            continue
        if username in b.on_file:
            b.problem(
                file,
                line,
                "username_taken",
                f"{old} is {username} in the files, but {username} is already on file: "
                f"{old} not renamed",
                username,
            )
            continue
        renames[old] = username
    return renames


def _candidates(b: Builder) -> Iterator[tuple[str, list[str], str, str, int]]:
    """(username in the files, the references it may have had, role, file, line)."""
    for s in b.students.values():
        olds = [student_reference(s.pupil_id, None)] if s.pupil_id else []
        olds += [student_reference(None, s.tax_code)] if s.tax_code else []
        yield s.username, [o for o in olds if o != s.username], Role.STUDENT.value, s.file, s.line
    for g in b.guardians.values():
        if g.tax_code and g.students and guardian_reference(g.tax_code) != g.username:
            olds = [guardian_reference(g.tax_code)]
            yield g.username, olds, Role.GUARDIAN.value, g.file, g.line
