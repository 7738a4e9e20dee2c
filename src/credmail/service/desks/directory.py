"""The directory desk: import credmail's CSV or the register's exports (with a dry run that
reports the difference and any refusal), list, show and search the people on file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

import structlog

from credmail.core.values import Role
from credmail.service.desks.audit import AuditDesk
from credmail.service.desks.base import DeskError
from credmail.service.directory_changes import (
    CHANGE_KINDS,
    Change,
    changes,
    refuse_case_clashes,
)
from credmail.service.directory_csv import DirectoryRecord, first_line, read_directory
from credmail.service.import_errors import DirectoryError, ImportRefused
from credmail.service.import_files import ImportLimits, file_kind
from credmail.service.ports import (
    Clock,
    DirectoryAdmin,
    ImportSummary,
    PersonView,
    Sheet,
    SpreadsheetReader,
)
from credmail.service.register_columns import (
    ColumnMapping,
    is_credmail_csv,
    mapping_toml,
    read_mapping,
)
from credmail.service.register_import import FileInfo, Progress, read_register
from credmail.service.register_rows import Problem
from credmail.service.review import Actor, audit_entry

_PRUNE_IS_FOR_CSV = ImportRefused(
    "--prune is for credmail's own CSV; a register import marks pupils who left inactive instead",
    "«Rimuovere le persone che non sono nel file» vale solo per il CSV della rubrica: con i "
    "file del registro gli alunni usciti sono segnati come non più iscritti",
)
_CSV_ALONE = ImportRefused(
    "credmail's own CSV is imported one file at a time, without --mapping",
    "il CSV della rubrica si importa da solo, un file per volta",
)


@dataclass(frozen=True)
class RegisterPreview:
    """What an import of the register's files would do: read it, show it, then `apply`."""

    files: tuple[FileInfo, ...]
    records: tuple[DirectoryRecord, ...]
    problems: tuple[Problem, ...]
    changes: tuple[Change, ...]
    retire: bool  # students on file but absent from the files are marked inactive
    counts: dict[str, int] = field(default_factory=dict)
    renames: dict[str, str] = field(default_factory=dict)  # old username -> the register's

    def changed(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    def report_rows(self) -> list[tuple[str, ...]]:
        """The preview as rows for the secretariat's CSV report (header first)."""
        rows: list[tuple[str, ...]] = [("kind", "code", "file", "line", "username", "detail")]
        rows += [("count", name, "", "", "", str(n)) for name, n in self.counts.items()]
        rows += [
            ("problem", p.code, p.file, str(p.line or ""), p.username or "", p.detail)
            for p in self.problems
        ]
        rows += [
            ("change", c.kind, "", "", c.username, f"{c.role} {c.name} {c.detail}".strip())
            for c in self.changes
        ]
        return rows


@dataclass(frozen=True)
class ImportResult:
    """The difference between the file and the directory; `refusal` blocks a large prune."""

    summary: ImportSummary
    dry_run: bool
    refusal: str | None = None

    @property
    def written(self) -> bool:
        return not self.dry_run and self.refusal is None


@dataclass(frozen=True)
class DirectoryImport:
    """One import of files as the CLI and the console run it: what was (or, on a dry run,
    would be) written, and for the register's exports the preview that shows it."""

    result: ImportResult
    preview: RegisterPreview | None = None


class DirectoryDesk:
    def __init__(
        self,
        admin: DirectoryAdmin,
        clock: Clock,
        timezone: ZoneInfo,
        max_prune_share: float,
        audit: AuditDesk | None = None,
        sheets: SpreadsheetReader | None = None,
        limits: ImportLimits | None = None,
    ) -> None:
        self.admin, self.clock, self.timezone = admin, clock, timezone
        self.max_prune_share, self.audit = max_prune_share, audit
        self.sheets = sheets
        self.limits = limits or ImportLimits()
        self.log = structlog.get_logger("credmail.desks.directory")

    def import_files(
        self,
        files: Sequence[tuple[str, bytes]],
        actor: Actor,
        *,
        dry_run: bool,
        force: bool = False,
        prune: bool = False,
        layout: str | None = None,
        mapping: ColumnMapping | None = None,
        progress: Progress | None = None,
    ) -> DirectoryImport:
        """Import files the same way whether they came from a path, standard input or the
        console: credmail's own CSV (one file) or the register's exports, told apart by their
        bytes unless `layout` says which ("credmail", "classeviva", "guardians"). A dry run
        computes everything the real run would, its refusal included, and writes nothing.
        DirectoryError lists every problem, each naming its file."""
        actor.require("directory.import")
        for name, data in files:
            self.limits.check_size(len(data), name)
        if (layout or self.file_format(*files[0])) != "credmail":
            if prune:
                raise _PRUNE_IS_FOR_CSV
            preview = self.preview_register(
                files, layout=layout, mapping=mapping, progress=progress
            )
            return DirectoryImport(
                self.apply_register(preview, actor, force=force, dry_run=dry_run), preview
            )
        if len(files) > 1 or mapping is not None:
            raise _CSV_ALONE
        name, data = files[0]
        try:
            return DirectoryImport(
                self.import_csv(data, actor, prune=prune, dry_run=dry_run, force=force)
            )
        except ImportRefused as exc:
            raise exc.named(name) from None
        except DirectoryError as exc:
            raise DirectoryError([f"{name}: {problem}" for problem in exc.problems]) from None

    def import_csv(
        self, data: bytes, actor: Actor, *, prune: bool, dry_run: bool, force: bool = False
    ) -> ImportResult:
        """Validate the file (DirectoryError lists every problem), then apply it unless this
        is a dry run or a prune beyond `max_prune_share` without `force`."""
        actor.require("directory.import")
        today = self.clock().astimezone(self.timezone).date()
        roles = self.admin.roles()
        records = read_directory(data, today, roles, max_rows=self.limits.max_rows)
        refuse_case_clashes((r.username for r in records), roles)
        refusals: list[str | None] = []

        def keep(summary: ImportSummary) -> bool:
            refusals.append(None if force else summary.prune_refusal(self.max_prune_share))
            return not dry_run and refusals[-1] is None

        summary = self.admin.apply(records, prune=prune, keep=keep)
        result = ImportResult(summary, dry_run, refusals[-1] if refusals else None)
        if result.written:
            self.log.debug("directory.imported", by=str(actor), summary=summary.as_text())
            self._audit_import(actor, summary)
        return result

    def _audit_import(self, actor: Actor, summary: ImportSummary) -> None:
        if self.audit is not None:
            done = (
                f"aggiunte {summary.added}, modificate {summary.updated}, "
                f"invariate {summary.unchanged}, rimosse {summary.removed}"
            )
            if summary.renamed:  # the usernames only: the audit log keeps no names
                pairs = (person.partition(" (")[0] for person in summary.renamed_people)
                done += f", rinominate {summary.renamed}: " + "; ".join(pairs)
            self.audit.record(actor, "directory.import", None, done)

    def file_format(self, name: str, data: bytes) -> str:
        """'credmail' for credmail's own CSV, else 'register' (the register's exports), told
        by the bytes alone: the name is a label (standard input has none)."""
        if file_kind(data) != "text":
            return "register"
        try:
            first = first_line(data)
        except DirectoryError:
            return "register"  # empty or not text: the reader names the file and says which
        return "credmail" if is_credmail_csv(first) else "register"

    def read_mapping(self, name: str, data: bytes) -> ColumnMapping:
        return read_mapping(name, data)

    def mapping_template(self, name: str, data: bytes, mapping: ColumnMapping | None = None) -> str:
        """An editable TOML mapping for the file's header row (`directory mapping init`)."""
        return mapping_toml(self._open(name, data), mapping)

    def preview_register(
        self,
        files: Sequence[tuple[str, bytes]],
        *,
        layout: str | None = None,
        mapping: ColumnMapping | None = None,
        progress: Progress | None = None,
    ) -> RegisterPreview:
        """Read the register's files (every problem reported, nothing written) and compare
        them with the directory: the preview that `apply_register` writes."""
        today = self.clock().astimezone(self.timezone).date()
        on_file = {p.username: p for p in self.admin.people()}
        sheets = (self._open(name, data) for name, data in files)
        roles = {name: person.role for name, person in on_file.items()}
        data = read_register(
            sheets, today, layout=layout, mapping=mapping, progress=progress, on_file=roles
        )
        refuse_case_clashes((r.username for r in data.records), on_file)
        had_students = any(p.role == Role.STUDENT.value for p in on_file.values())
        known = set(on_file) | set(data.renames.values())
        records = tuple(
            replace(r, new_student=r.new_student or (had_students and r.username not in known))
            if r.role is Role.STUDENT
            else r
            for r in data.records
        )
        found = changes(records, on_file, data.renames, retire=data.has_students)
        students = [r for r in records if r.role is Role.STUDENT]
        guardians = [r for r in records if r.role is Role.GUARDIAN]
        counts = {
            "students": len(students),
            "active_students": sum(r.active for r in students),
            "new_students": sum(r.new_student and r.active for r in students),
            "guardians": len(guardians),
            "addresses": len({a.casefold() for r in records for a in r.emails}),
            "problems": len(data.problems),
            **{kind: sum(c.kind == kind for c in found) for kind in CHANGE_KINDS},
        }
        return RegisterPreview(
            tuple(data.files),
            records,
            tuple(data.problems),
            found,
            data.has_students,
            counts,
            data.renames,
        )

    def apply_register(
        self, preview: RegisterPreview, actor: Actor, *, force: bool = False, dry_run: bool = False
    ) -> ImportResult:
        """Write a preview in one transaction; refused (nothing written) when it would
        retire more than `max_prune_share` of the directory without `force`. A dry run does
        all of it, the refusal included, and rolls back."""
        actor.require("directory.import")
        refusals: list[str | None] = []

        def keep(summary: ImportSummary) -> bool:
            refusals.append(None if force else summary.prune_refusal(self.max_prune_share))
            return not dry_run and refusals[-1] is None

        summary = self.admin.apply(
            preview.records, prune=False, keep=keep, retire=preview.retire, renames=preview.renames
        )
        result = ImportResult(summary, dry_run, refusals[-1] if refusals else None)
        if result.written:
            self.log.debug("directory.register_imported", by=str(actor), summary=summary.as_text())
            self._audit_import(actor, summary)
        return result

    def _open(self, name: str, data: bytes) -> Sheet:
        """A file as rows, within the size and row limits."""
        self.limits.check_size(len(data), name)
        if self.sheets is None:
            raise DeskError("no spreadsheet reader configured")
        return self.limits.bounded(self.sheets.open(name, data))

    def people(self) -> list[PersonView]:
        return self.admin.people()

    def person(self, username: str) -> PersonView:
        found = self.admin.people(username)
        if not found:
            raise DeskError(f"no person with username {username}")
        return found[0]

    def find(self, text: str, limit: int = 50) -> list[PersonView]:
        """At most `limit` people whose username, name or an address contains `text`
        (the console's search: the database filters, not Python)."""
        return self.admin.search(text, limit) if text.strip() else []

    def set_language(self, username: str, language: str, actor: Actor) -> None:
        """A person's language as an ISO 639-1 code (two letters), or none when empty."""
        actor.require("directory.language")
        code = language.strip().lower() or None
        if code is not None and not (len(code) == 2 and code.isascii() and code.isalpha()):
            raise DeskError("la lingua va indicata con il codice ISO 639-1 (due lettere, es. it)")
        entry = audit_entry(actor, self.clock(), "directory.language", username, code or "-")
        if not self.admin.set_language(username, code, entry):
            raise DeskError(f"no person with username {username}")

    def search(self, text: str) -> list[PersonView]:
        """People whose username, name or an address contains `text` (any case)."""
        needle = text.strip().casefold()
        return [p for p in self.admin.people() if needle and needle in _haystack(p)]


def _haystack(person: PersonView) -> str:
    fields = (person.username, person.first_name, person.last_name, *person.emails)
    return "\n".join(fields).casefold()
