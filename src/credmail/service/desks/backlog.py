"""The backlog desk: the requests first start left unanswered in the folder; handle them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from credmail.core.parse import quick_subject
from credmail.core.values import MailRef
from credmail.service.desks.base import DeskError
from credmail.service.inbox_sync import Pipeline
from credmail.service.outbox.delivery import OutboxDelivery
from credmail.service.ports import MailSource


@dataclass(frozen=True)
class Waiting:
    """One skipped request still in the watched folder."""

    uid: str
    subject: str


@dataclass(frozen=True)
class BacklogRun:
    """What `handle` found and, unless a dry run, what came of it."""

    waiting: tuple[Waiting, ...]
    dry_run: bool
    handled: Mapping[str, int] = field(default_factory=dict)
    sent: int = 0


class BacklogDesk:
    def __init__(
        self,
        pipeline: Pipeline,
        source_factory: Callable[[], MailSource],
        delivery: OutboxDelivery,
        has_uids: bool,
    ) -> None:
        self.pipeline, self.source_factory, self.delivery = pipeline, source_factory, delivery
        self.has_uids = has_uids

    def waiting(self) -> tuple[Waiting, ...]:
        source = self._source()
        try:
            return _waiting(self.pipeline.backlog(source))
        finally:
            source.close()

    def handle(self, *, dry_run: bool) -> BacklogRun:
        """Handle the skipped requests as if they had just arrived, then deliver."""
        source = self._source()
        try:
            refs = self.pipeline.backlog(source)
            if dry_run:
                return BacklogRun(_waiting(refs), dry_run=True)
            stats = self.pipeline.handle_backlog(source, refs)
        finally:
            source.close()
        delivery = asyncio.run(self.delivery.drain())
        return BacklogRun(_waiting(refs), False, dict(stats.handled), delivery.sent)

    def _source(self) -> MailSource:
        self.require_uids()
        return self.source_factory()

    def require_uids(self) -> None:
        """Refuse a source without UIDs (Maildir): there is no backlog to resume."""
        if not self.has_uids:
            raise DeskError("backlog needs an IMAP mailbox (a Maildir has no UIDs to resume from)")


def _waiting(refs: Sequence[MailRef]) -> tuple[Waiting, ...]:
    return tuple(Waiting(ref.key, quick_subject(ref.header)) for ref in refs)
