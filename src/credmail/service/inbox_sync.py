"""Process the watched folder in batches: classify headers, fetch the requests' bodies,
decide the batch's requests in one transaction (a savepoint each), then move them.

The moves always follow the commits; a move a crash interrupted is finished on the next
sync (moving a message that already left the folder does nothing).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import structlog

from credmail.core.bounces import looks_like_report
from credmail.core.classify import classify_subject
from credmail.core.parse import quick_subject
from credmail.core.values import MailRef, Outcome
from credmail.service.handle_request import MessageProcessor, Policy
from credmail.service.near_miss import NearMissHandler
from credmail.service.ports import (
    FolderState,
    LedgerEntry,
    MailSource,
    UnitOfWork,
)

FETCH_BUDGET_BYTES = 16_000_000
BACKLOG_SUFFIX = "\n(backlog)"  # IMAP names cannot hold a newline: no folder clashes

__all__ = ["Pipeline", "Policy", "SyncStats"]


@dataclass
class SyncStats:
    scanned: int = 0
    handled: dict[str, int] = field(default_factory=dict)
    skipped_requests: int = 0  # left unanswered by a first start (see `credmail backlog`)
    near_misses: int = 0  # requests without the exact subject, flagged (README)

    def count(self, outcome: str) -> None:
        self.handled[outcome] = self.handled.get(outcome, 0) + 1


class Pipeline:
    """The per-folder sync; each request goes through the MessageProcessor."""

    def __init__(self, processor: MessageProcessor) -> None:
        self.processor = processor
        self.near_misses = NearMissHandler(processor)
        self._state: FolderState | None = None  # the folder `sync` is reading
        self.policy = processor.policy
        self.uow = processor.uow
        self.clock = processor.clock
        self.log = structlog.get_logger("credmail.pipeline")

    # -- folder level -------------------------------------------------------------

    def sync(
        self, source: MailSource, should_stop: Callable[[], bool] = lambda: False
    ) -> SyncStats:
        """Handle everything new in the watched folder; safe to repeat at any time.

        `should_stop` is checked between messages, so a stop finishes the one in hand.
        """
        stats = SyncStats()
        state = self._state = source.select()
        self._sync_keywords(source, state)
        self._complete_moves(source, state)
        after = self._start_point(source, state, stats)
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

    def _start_point(self, source: MailSource, state: FolderState, stats: SyncStats) -> int:
        with self.uow() as uow:
            checkpoint = uow.checkpoints.get(state.folder)
            if checkpoint and checkpoint[0] == state.validity:
                return checkpoint[1]
            after = 0
            if checkpoint is None and not self.policy.process_existing:
                after = self._skip_backlog(uow, source, state, stats)
            elif checkpoint is not None:
                self.log.warning("mailbox.uidvalidity_changed", folder=state.folder)
            uow.checkpoints.set(state.folder, state.validity, after, self.clock())
            uow.commit()
            return after

    def _skip_backlog(
        self, uow: UnitOfWork, source: MailSource, state: FolderState, stats: SyncStats
    ) -> int:
        """First start: leave the mail already in the folder unanswered, remember where the
        backlog ends (for `credmail backlog`) and log how many requests it holds."""
        now = self.clock()
        if state.ordered:
            until = max(state.uidnext - 1, 0)
            uow.checkpoints.set(state.folder + BACKLOG_SUFFIX, state.validity, until, now)
            refs = list(self._scan_until(source, until))
        else:
            until, refs = 0, source.scan(0, 1_000_000)
            uow.ledger.expect(len(refs))
            for ref in refs:
                uow.ledger.add(ref, None, Outcome.IGNORED, ("preexisting",), None, now)
        requests = stats.skipped_requests = sum(1 for ref in refs if self._looks_like_request(ref))
        self.log.info(
            "mailbox.first_start",
            folder=state.folder,
            skipped_backlog=True,
            skipped_messages=len(refs),
            skipped_requests=requests,
            hint="credmail backlog list" if requests and state.ordered else None,
        )
        return until

    def _scan_until(self, source: MailSource, until: int) -> Iterator[MailRef]:
        """Every message with a UID up to `until`, in batches (headers only)."""
        after = 0
        while after < until:
            refs = [r for r in source.scan(after, self.policy.batch_size) if int(r.key) <= until]
            if not refs:
                return
            yield from refs
            after = max(int(ref.key) for ref in refs)

    def backlog(self, source: MailSource) -> list[MailRef]:
        """The requests first start left in the watched folder that are still there and
        unhandled; empty for sources without UIDs (Maildir)."""
        state = source.select()
        with self.uow(read_only=True) as uow:
            mark = uow.checkpoints.get(state.folder + BACKLOG_SUFFIX)
        if not state.ordered or mark is None or mark[0] != state.validity:
            return []
        refs = [ref for ref in self._scan_until(source, mark[1]) if self._looks_like_request(ref)]
        with self.uow(read_only=True) as uow:
            known = uow.ledger.find_many(refs)
        return [ref for ref in refs if ref.key not in known]

    def handle_backlog(self, source: MailSource, refs: Sequence[MailRef]) -> SyncStats:
        """Handle skipped requests as if they had just arrived (each decided, then moved)."""
        stats = SyncStats()
        self._batch(source, refs, stats, lambda: False)
        return stats

    def _save_checkpoint(self, state: FolderState, after: int) -> None:
        with self.uow(crash_safe_only=True) as uow:  # lost: the ledger knows what was done
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
        requests = [r for r in refs if self._looks_like_request(r) or looks_like_report(r.header)]
        asked = {ref.key for ref in requests}
        others = [r for r in refs if r.key not in asked] if self._reads_others() else []
        with self.uow(read_only=True) as uow:
            known = uow.ledger.find_many(requests + others)
        moves = [(ref, known[ref.key]) for ref in requests if ref.key in known]
        self._near_misses(source, [r for r in others if r.key not in known], stats)
        try:
            for chunk in _by_size([r for r in requests if r.key not in known]):
                if should_stop():
                    return True
                bodies = self._fetch(source, chunk)
                items = [(ref, bodies.get(ref.key)) for ref in chunk if self._present(ref, bodies)]
                done, stopped = self.processor.process_batch(items, should_stop)
                for ref, entry in done:
                    moves.append((ref, entry))
                    stats.count(str(entry.outcome))
                if stopped:
                    return True
        finally:
            self._move(source, moves)
        return False

    def _reads_others(self) -> bool:
        """Near misses are looked for in `sync` (new mail), never in the backlog."""
        return self.policy.near_miss.active and self._state is not None

    def _near_misses(self, source: MailSource, refs: Sequence[MailRef], stats: SyncStats) -> None:
        """Read the mail that is not a request once; flag the near misses found."""
        wanted = [ref for ref in refs if ref.size <= self.policy.max_message_bytes]
        state = self._state
        if not wanted or state is None:
            return
        for chunk in _by_size(wanted):
            bodies = self._fetch(source, chunk)
            items = [(ref, bodies[ref.key]) for ref in chunk if ref.key in bodies]
            stats.near_misses += self.near_misses.check(items, remember_all=not state.ordered)
        self._sync_keywords(source, state)

    def _sync_keywords(self, source: MailSource, state: FolderState) -> None:
        """Set (or take off) the near misses' keyword where the database wants it."""
        if not self.policy.near_miss.active:
            return
        with self.uow(read_only=True) as uow:
            pending = uow.near_misses.keyword_pending(state.folder, state.validity)
        keyword = self.policy.near_miss.keyword
        for on in (True, False):
            keys = [key for key, wanted in pending if wanted is on]
            if not keys:
                continue
            refs = [MailRef(state.folder, state.validity, key, 0, b"") for key in keys]
            source.set_keyword(refs, keyword, on)
            with self.uow(crash_safe_only=True) as uow:  # lost: set again, harmlessly
                uow.near_misses.keyword_done(state.folder, state.validity, keys, on)
                uow.commit()

    def _present(self, ref: MailRef, bodies: dict[str, bytes]) -> bool:
        """False for a message that left the folder since the scan (moved or deleted by a
        person); an oversize one has no body on purpose and is quarantined."""
        if ref.key not in bodies and ref.size <= self.policy.max_message_bytes:
            self.log.info("message.gone", key=ref.key)
            return False
        return True

    def _looks_like_request(self, ref: MailRef) -> bool:
        return classify_subject(quick_subject(ref.header), self.policy.rules).is_request

    def _fetch(self, source: MailSource, refs: Sequence[MailRef]) -> dict[str, bytes]:
        wanted = [ref for ref in refs if ref.size <= self.policy.max_message_bytes]
        return source.fetch_many(wanted) if wanted else {}

    def _move(self, source: MailSource, moves: Sequence[tuple[MailRef, LedgerEntry]]) -> None:
        """One MOVE per target folder, then one transaction to record them."""
        by_folder: dict[str, list[tuple[MailRef, LedgerEntry]]] = defaultdict(list)
        for ref, entry in moves:
            folder = self._target(entry)
            if folder and not entry.moved:
                by_folder[folder].append((ref, entry))
        for folder, items in by_folder.items():
            if folder == items[0][0].folder:
                self.log.error("move.into_watched_folder", folder=folder, messages=len(items))
                continue  # it would come back as new mail, forever
            source.move_many([ref for ref, _ in items], folder)
            with self.uow(crash_safe_only=True) as uow:  # lost: the move is redone
                uow.ledger.mark_moved([entry.id for _, entry in items], self.clock())
                uow.commit()

    def _target(self, entry: LedgerEntry) -> str | None:
        """The folder for the entry's outcome under the current config: a pending move
        recorded under a wrong config goes where the fixed config says."""
        if not entry.target_folder:
            return None
        try:
            return self.policy.folders.get(Outcome(entry.outcome), entry.target_folder)
        except ValueError:
            return entry.target_folder


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
