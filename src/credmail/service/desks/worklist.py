"""Register tasks in bulk (the worklist backend's September: a thousand tasks in a
week): a page of families (the tasks at one address together), many marked done at once
(one audit entry each, one mail per address naming every child done), and the open ones
as CSV shaped for the register's own bulk "send credentials" step.

Marking done commits `batch` families per transaction: 1,200 tasks never hold one long
transaction (and the write lock on SQLite) while the console and the daemon wait.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from credmail.core.addresses import address_key
from credmail.core.values import Person, SendReply
from credmail.service.csv_export import spreadsheet_writer
from credmail.service.desks.tasks import TEMPLATE_TASK_DONE, audit_detail
from credmail.service.outbox.queue import Mailer
from credmail.service.ports import (
    AuditEntry,
    Clock,
    RegisterTask,
    TaskFilter,
    UnitOfWork,
    UnitOfWorkFactory,
    WorklistQueries,
)
from credmail.service.presentation import NO_REGISTER_CODE, register_code, role_label
from credmail.service.review import Actor, audit_entry

BATCH_FAMILIES = 25
FAMILIES_PER_PAGE = 50
CSV_COLUMNS = ("codice", "cognome", "nome", "classe", "ruolo", "email", "attività", "confermata")


@dataclass(frozen=True)
class Family:
    """The tasks at one address (a task with no address is alone)."""

    address: str | None
    tasks: tuple[RegisterTask, ...]


@dataclass(frozen=True)
class WorklistPage:
    families: tuple[Family, ...]
    total_families: int
    total_tasks: int
    page: int
    pages: int


@dataclass(frozen=True)
class BulkDone:
    done: int  # tasks marked done
    mailed: int  # mails queued, one per address
    skipped: tuple[int, ...] = ()  # not open (done meanwhile by someone else) or unknown


@dataclass(frozen=True)
class Named:
    """A person a family's mail names besides the first (names.j2's `for_student`)."""

    full_name: str
    username: str
    role: str
    sex: str | None = None


def families_of(tasks: Sequence[RegisterTask]) -> list[Family]:
    """The tasks grouped by address key, in their order; no address: a family alone."""
    groups: dict[str, list[RegisterTask]] = {}
    for task in tasks:
        key = (address_key(task.address) if task.address else None) or f"#{task.id}"
        groups.setdefault(key, []).append(task)
    return [Family(group[0].address, tuple(group)) for group in groups.values()]


class WorklistDesk:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        queries: WorklistQueries,
        mailer: Mailer,
        clock: Clock,
        timezone: ZoneInfo,
        batch: int = BATCH_FAMILIES,
    ) -> None:
        self.uow, self.queries, self.mailer, self.clock = uow, queries, mailer, clock
        self.timezone, self.batch = timezone, batch

    def page(
        self, where: TaskFilter, number: int = 1, size: int = FAMILIES_PER_PAGE
    ) -> WorklistPage:
        tasks, families, total = self.queries.families(where, size, (number - 1) * size)
        pages = max(1, -(-families // size))
        return WorklistPage(tuple(families_of(tasks)), families, total, number, pages)

    def classes(self) -> list[str]:
        return self.queries.classes()

    def open_ids(self, where: TaskFilter) -> list[int]:
        """The open tasks `where` matches (the console's "tutte quelle filtrate")."""
        return [t.id for t in self.queries.rows(where) if t.status == "open"]

    def done_many(self, task_ids: Sequence[int], actor: Actor, note: str | None = None) -> BulkDone:
        """Mark the open tasks among `task_ids` done, `batch` families per transaction;
        each address gets one mail naming every child (or person) done for it."""
        wanted = list(dict.fromkeys(task_ids))
        found = self.queries.open_among(wanted)
        done: list[int] = []
        mailed = 0
        families = families_of(found)
        for start in range(0, len(families), self.batch):
            chunk = families[start : start + self.batch]
            with self.uow() as uow:
                for family, marked in self._batch_done(uow, chunk, actor, note or None):
                    done += [t.id for t in marked]
                    mailed += bool(marked and family.address)
                uow.commit()
        finished = set(done)
        skipped = tuple(i for i in wanted if i not in finished)
        return BulkDone(len(done), mailed, skipped)

    def _batch_done(
        self, uow: UnitOfWork, chunk: Sequence[Family], actor: Actor, note: str | None
    ) -> list[tuple[Family, list[RegisterTask]]]:
        """One transaction's families, each with the tasks it marked: one UPDATE marks
        their tasks (only those still open), then each family's mail and every task's
        audit entry (one INSERT); the people they are about read first in a few queries."""
        now = self.clock()
        ids = [t.id for family in chunk for t in family.tasks]
        marked_ids = uow.tasks.mark_many_done(ids, now, str(actor), note)
        known = _people(uow, [f.address for f in chunk if f.address])
        entries: list[AuditEntry] = []
        results = []
        for family in chunk:
            marked = [t for t in family.tasks if t.id in marked_ids]
            if marked:
                entries += self._family_done(uow, family, marked, actor, note, known)
            results.append((family, marked))
        uow.audit.add_many(entries)  # one statement: one entry per task
        return results

    def _family_done(
        self,
        uow: UnitOfWork,
        family: Family,
        marked: list[RegisterTask],
        actor: Actor,
        note: str | None,
        known: Mapping[str, Person],
    ) -> list[AuditEntry]:
        """Queue the family's mail; its tasks' audit entries (added with the batch's)."""
        now = self.clock()
        detail = audit_detail(note, None, mailed=family.address is not None)
        if len(marked) > 1:
            detail += f" (una sola e-mail per {len(marked)} attività allo stesso indirizzo)"
        entries = [audit_entry(actor, now, "task.done", f"attività {t.id}", detail) for t in marked]
        if family.address is None:
            return entries
        first, others = marked[0], marked[1:]
        named = {t.username: t for t in others if t.username != first.username}
        also = [_named(t, known.get(t.username)) for t in named.values()]
        reply = SendReply(TEMPLATE_TASK_DONE, family.address, about=first.username)
        context = {"username": first.username, "message": "", "also": also}
        self.mailer.queue(uow, reply, None, now, context=context, known=known)
        uow.nudge()  # the daemon sends it once the batch commits
        return entries

    def export_csv(self, where: TaskFilter) -> Iterator[str]:
        """The matching tasks (open ones by default) as the spreadsheet CSV staff open in
        Excel (UTF-8 with a BOM, `;`): one row per account, by class and name."""
        out = io.StringIO()
        out.write("\ufeff")
        writer = spreadsheet_writer(out)
        writer.writerow(CSV_COLUMNS)
        for n, task in enumerate(self.queries.rows(where), start=1):
            writer.writerow(_row(task, self.timezone))
            if n % 500 == 0:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()


def _people(uow: UnitOfWork, addresses: Sequence[str]) -> dict[str, Person]:
    """The people at these addresses and their students, by username (a few queries;
    the directory then answers the mails' lookups of those addresses from memory)."""
    keys = [key for key in (address_key(a) for a in addresses) if key]
    people = uow.directory.prefetch(keys)
    guardians = [p.username for p in people if p.students]
    students = uow.directory.students_of(guardians) if guardians else []
    return {p.username: p for p in (*people, *students)}


def _named(task: RegisterTask, person: Person | None) -> Named:
    sex = person.sex if person is not None else None  # "per lo studente", "per la studentessa"
    return Named(f"{task.first_name} {task.last_name}", task.username, task.role, sex)


def _row(task: RegisterTask, timezone: ZoneInfo) -> tuple[object, ...]:
    code = register_code(task.username)
    return (
        "" if code == NO_REGISTER_CODE else code,  # a made-up key exists in no register
        task.last_name,
        task.first_name,
        task.class_name or "",
        role_label(task.role),
        task.address or "",
        task.id,
        task.confirmed_at.astimezone(timezone).strftime("%d/%m/%Y"),
    )
