"""The directory desk: import a CSV (with a dry run that reports the difference), list,
show and search the people on file."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import structlog

from credmail.service.desks.audit import AuditDesk
from credmail.service.desks.base import DeskError
from credmail.service.directory_csv import read_directory
from credmail.service.ports import Clock, DirectoryAdmin, ImportSummary, PersonView
from credmail.service.review import Actor, audit_entry


@dataclass(frozen=True)
class ImportResult:
    """The difference between the file and the directory; `refusal` blocks a large prune."""

    summary: ImportSummary
    dry_run: bool
    refusal: str | None = None

    @property
    def written(self) -> bool:
        return not self.dry_run and self.refusal is None


class DirectoryDesk:
    def __init__(
        self,
        admin: DirectoryAdmin,
        clock: Clock,
        timezone: ZoneInfo,
        max_prune_share: float,
        audit: AuditDesk | None = None,
    ) -> None:
        self.admin, self.clock, self.timezone = admin, clock, timezone
        self.max_prune_share, self.audit = max_prune_share, audit
        self.log = structlog.get_logger("credmail.desks.directory")

    def import_csv(
        self, data: bytes, actor: Actor, *, prune: bool, dry_run: bool, force: bool = False
    ) -> ImportResult:
        """Validate the file (DirectoryError lists every problem), then apply it unless this
        is a dry run or a prune beyond `max_prune_share` without `force`."""
        actor.require("directory.import")
        today = self.clock().astimezone(self.timezone).date()
        records = read_directory(data, today, self.admin.roles())
        refusals: list[str | None] = []

        def keep(summary: ImportSummary) -> bool:
            refusals.append(None if force else summary.prune_refusal(self.max_prune_share))
            return not dry_run and refusals[-1] is None

        summary = self.admin.apply(records, prune=prune, keep=keep)
        result = ImportResult(summary, dry_run, refusals[-1] if refusals else None)
        if result.written:
            self.log.debug("directory.imported", by=str(actor), summary=summary.as_text())
            if self.audit is not None:
                done = (
                    f"aggiunte {summary.added}, modificate {summary.updated}, "
                    f"invariate {summary.unchanged}, rimosse {summary.removed}"
                )
                self.audit.record(actor, "directory.import", None, done)
        return result

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
