"""Process the watched folder in batches: classify headers, fetch the requests' bodies,
decide each request in its own transaction, then move the batch's requests.

The moves always follow the commits; a move a crash interrupted is finished on the next
sync (moving a message that already left the folder does nothing).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import structlog

from credmail.core.classify import classify_subject
from credmail.core.parse import quick_subject
from credmail.core.values import MailRef, Outcome
from credmail.service.message import Clock, MessageProcessor, Policy
from credmail.service.ports import (
    FolderState,
    LedgerEntry,
    MailSource,
    UnitOfWork,
)

FETCH_BUDGET_BYTES = 16_000_000

__all__ = ["Clock", "Pipeline", "Policy", "SyncStats"]


@dataclass
class SyncStats:
    scanned: int = 0
    handled: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.handled[outcome] = self.handled.get(outcome, 0) + 1


class Pipeline:
    """The per-folder sync; each request goes through the MessageProcessor."""

    def __init__(self, processor: MessageProcessor) -> None:
        self.processor = processor
        self.policy = processor.policy
        self.uow = processor.uow
        self.clock = processor.clock
        self.log = structlog.get_logger("credmail.pipeline")

    @property
    def on_outbox(self) -> Callable[[], None]:
        return self.processor.on_outbox

    @on_outbox.setter
    def on_outbox(self, callback: Callable[[], None]) -> None:
        self.processor.on_outbox = callback

    # -- folder level -------------------------------------------------------------

    def sync(
        self, source: MailSource, should_stop: Callable[[], bool] = lambda: False
    ) -> SyncStats:
        """Handle everything new in the watched folder; safe to repeat at any time.

        `should_stop` is checked between messages, so a stop finishes the one in hand.
        """
        stats = SyncStats()
        state = source.select()
        self._complete_moves(source, state)
        after = self._start_point(source, state)
        while True:
            refs = source.scan(after, self.policy.batch_size)
            stopped = self._batch(source, refs, stats, should_stop)
            if stopped or not state.ordered or not refs:
                break
            after = max(int(ref.key) for ref in refs)
            self._save_checkpoint(state, after)
        if not stopped:
            self._save_checkpoint(state, after)
        return stats

    def handle(self, source: MailSource, ref: MailRef) -> str | None:
        """Process one message; returns its outcome, or None when it was not ours."""
        stats = SyncStats()
        self._batch(source, [ref], stats, lambda: False)
        return next(iter(stats.handled), None)

    def _start_point(self, source: MailSource, state: FolderState) -> int:
        with self.uow() as uow:
            checkpoint = uow.checkpoints.get(state.folder)
            if checkpoint and checkpoint[0] == state.validity:
                return checkpoint[1]
            after = 0
            if checkpoint is None and not self.policy.process_existing:
                after = self._skip_backlog(uow, source, state)
            elif checkpoint is not None:
                self.log.warning("mailbox.uidvalidity_changed", folder=state.folder)
            uow.checkpoints.set(state.folder, state.validity, after, self.clock())
            uow.commit()
            return after

    def _skip_backlog(self, uow: UnitOfWork, source: MailSource, state: FolderState) -> int:
        """First start: leave the mail already in the folder unanswered."""
        self.log.info("mailbox.first_start", folder=state.folder, skipped_backlog=True)
        if state.ordered:
            return max(state.uidnext - 1, 0)
        now = self.clock()
        for ref in source.scan(0, 1_000_000):
            uow.ledger.add(ref, None, Outcome.IGNORED, ("preexisting",), None, now)
        return 0

    def _save_checkpoint(self, state: FolderState, after: int) -> None:
        with self.uow() as uow:
            uow.checkpoints.set(state.folder, state.validity, after, self.clock())
            uow.commit()

    def _complete_moves(self, source: MailSource, state: FolderState) -> None:
        """Finish moves that a crash interrupted between commit and MOVE."""
        with self.uow(read_only=True) as uow:
            pending = uow.ledger.unmoved(state.folder, state.validity)
        refs = [MailRef(state.folder, state.validity, e.source_key, 0, b"") for e in pending]
        self._move(source, list(zip(refs, pending, strict=True)))

    # -- batch level --------------------------------------------------------------

    def _batch(
        self,
        source: MailSource,
        refs: Sequence[MailRef],
        stats: SyncStats,
        should_stop: Callable[[], bool],
    ) -> bool:
        """Handle one scanned batch; True when asked to stop."""
        stats.scanned += len(refs)
        requests = [ref for ref in refs if self._looks_like_request(ref)]
        with self.uow(read_only=True) as uow:
            known = uow.ledger.find_many(requests)
        moves = [(ref, known[ref.key]) for ref in requests if ref.key in known]
        try:
            for chunk in _by_size([r for r in requests if r.key not in known]):
                bodies = self._fetch(source, chunk)
                for ref in chunk:
                    if should_stop():
                        return True
                    entry = self._process(ref, bodies)
                    if entry is not None:
                        moves.append((ref, entry))
                        stats.count(str(entry.outcome))
        finally:
            self._move(source, moves)
        return False

    def _looks_like_request(self, ref: MailRef) -> bool:
        return classify_subject(quick_subject(ref.header), self.policy.rules).is_request

    def _fetch(self, source: MailSource, refs: Sequence[MailRef]) -> dict[str, bytes]:
        wanted = [ref for ref in refs if ref.size <= self.policy.max_message_bytes]
        return source.fetch_many(wanted) if wanted else {}

    def _process(self, ref: MailRef, bodies: dict[str, bytes]) -> LedgerEntry | None:
        raw = bodies.get(ref.key)
        if raw is None and ref.size <= self.policy.max_message_bytes:
            self.log.info("message.gone", key=ref.key)  # moved or deleted by a person
            return None
        attempt = self.processor.count_attempt(ref)
        return self.processor.process(ref, attempt, raw)

    def _move(self, source: MailSource, moves: Sequence[tuple[MailRef, LedgerEntry]]) -> None:
        """One MOVE per target folder, then one transaction to record them."""
        by_folder: dict[str, list[tuple[MailRef, LedgerEntry]]] = defaultdict(list)
        for ref, entry in moves:
            if entry.target_folder and not entry.moved:
                by_folder[entry.target_folder].append((ref, entry))
        for folder, items in by_folder.items():
            source.move_many([ref for ref, _ in items], folder)
            with self.uow() as uow:
                uow.ledger.mark_moved([entry.id for _, entry in items], self.clock())
                uow.commit()


def _by_size(refs: Sequence[MailRef]) -> Iterator[list[MailRef]]:
    """Chunks whose bodies together stay under the fetch budget (memory stays flat)."""
    chunk: list[MailRef] = []
    total = 0
    for ref in refs:
        if chunk and total + ref.size > FETCH_BUDGET_BYTES:
            yield chunk
            chunk, total = [], 0
        chunk.append(ref)
        total += ref.size
    if chunk:
        yield chunk
