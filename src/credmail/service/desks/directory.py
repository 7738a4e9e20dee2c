"""The directory desk: import a CSV (with a dry run that reports the difference), list,
show and search the people on file."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import structlog

from credmail.service.desks.base import DeskError
from credmail.service.directory_csv import read_directory
from credmail.service.ports import Clock, DirectoryAdmin, ImportSummary, PersonView
from credmail.service.review import Actor


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
        self, admin: DirectoryAdmin, clock: Clock, timezone: ZoneInfo, max_prune_share: float
    ) -> None:
        self.admin, self.clock, self.timezone = admin, clock, timezone
        self.max_prune_share = max_prune_share
        self.log = structlog.get_logger("credmail.desks.directory")

    def import_csv(
        self, data: bytes, actor: Actor, *, prune: bool, dry_run: bool, force: bool = False
    ) -> ImportResult:
        """Validate the file (DirectoryError lists every problem), then apply it unless this
        is a dry run or a prune beyond `max_prune_share` without `force`."""
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
        return result

    def people(self) -> list[PersonView]:
        return self.admin.people()

    def person(self, username: str) -> PersonView:
        found = self.admin.people(username)
        if not found:
            raise DeskError(f"no person with username {username}")
        return found[0]

    def search(self, text: str) -> list[PersonView]:
        """People whose username, name or an address contains `text` (any case)."""
        needle = text.strip().casefold()
        return [p for p in self.admin.people() if needle and needle in _haystack(p)]


def _haystack(person: PersonView) -> str:
    fields = (person.username, person.first_name, person.last_name, *person.emails)
    return "\n".join(fields).casefold()
