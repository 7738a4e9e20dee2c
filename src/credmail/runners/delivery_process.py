"""The outbox delivered by a second process while this one decides (`credmail run --once`).

credmail's work on a backlog is CPU-bound Python: a delivery thread beside the decisions
only takes turns with them on the interpreter lock (and waited, in total, about 1.1 s of a
3.7 s run for SQLite's write lock), so it made the run slower. A forked process runs on the
other core: it starts delivering after the first batch commits and keeps its SMTP
connection busy while the next batch is decided.

Nothing about delivery changes: the child runs the same `OutboxDelivery.drain` with its
per-mail transactions, which are already safe against a second deliverer (the row is
claimed, then marked sent, in one transaction). The parent nudges it through a pipe after
each commit that queued mail; when the parent closes the pipe (finished, or killed), the
child drains once more and exits. The parent then drains whatever is left itself, so a
child that died loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import threading
from dataclasses import asdict
from typing import Protocol

import structlog

from credmail.service.outbox.delivery import DeliveryStats, OutboxDelivery

log = structlog.get_logger("credmail.outbox")


class Engine(Protocol):
    """The database engine, as far as a fork needs it (SQLAlchemy's `Engine` is one)."""

    def dispose(self, close: bool = True) -> None: ...


class DeliveryProcess:
    """A forked child draining the outbox on each nudge until the nudge pipe closes."""

    def __init__(self, pid: int, nudges: int, results: int) -> None:
        self.pid, self._nudges, self._results = pid, nudges, results

    @classmethod
    def start(cls, delivery: OutboxDelivery, engine: Engine) -> DeliveryProcess | None:
        """Fork the child; None where forking is not safe or possible (a thread is already
        running, or no fork on this platform): the caller then delivers after deciding."""
        if not hasattr(os, "fork") or threading.active_count() > 1:
            return None
        engine.dispose()  # no open database connection crosses the fork (SQLite forbids it)
        nudge_read, nudge_write = os.pipe()
        result_read, result_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(nudge_write)
            os.close(result_read)
            _child(delivery, engine, nudge_read, result_write)
        os.close(nudge_read)
        os.close(result_write)
        os.set_blocking(nudge_write, False)
        return cls(pid, nudge_write, result_read)

    def nudge(self) -> None:
        """New mail is queued (a commit happened). Never blocks: a full pipe already
        holds a nudge the child has not read."""
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(self._nudges, b".")

    def finish(self) -> DeliveryStats:
        """Close the pipe, wait for the child's last drain, return what it delivered
        (nothing if it died: the caller's own drain then sends what it left)."""
        os.close(self._nudges)
        with os.fdopen(self._results, "rb") as results:
            report = results.read()
        _pid, status = os.waitpid(self.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0 or not report:
            log.error("outbox.process_failed", exit_code=code)
            return DeliveryStats()
        counts = json.loads(report)
        return DeliveryStats(counts["sent"], counts["retried"], counts["failed"])


def _child(delivery: OutboxDelivery, engine: Engine, nudges: int, results: int) -> None:
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent; it closes the pipe
        engine.dispose(close=False)  # nothing is pooled (closed before the fork); to be sure
        total = _deliver_until_closed(delivery, nudges)
        os.write(results, json.dumps(asdict(total)).encode())
        code = 0
    except BaseException as exc:  # a child must never return into the parent's code
        log.error("outbox.process_crashed", error_type=type(exc).__name__)
    finally:
        os._exit(code)


def _deliver_until_closed(delivery: OutboxDelivery, nudges: int) -> DeliveryStats:
    total = DeliveryStats()
    with asyncio.Runner() as loop:  # one loop: the SMTP connection stays open between drains
        while True:
            received = os.read(nudges, 4096)  # waits for a nudge; b"" when the parent is done
            try:
                _add(total, loop.run(delivery.drain(keep_open=bool(received))))
            except Exception as exc:  # as the daemon's worker: the next nudge tries again
                log.warning("outbox.drain_failed", error_type=type(exc).__name__)
            if not received:
                return total


def _add(total: DeliveryStats, more: DeliveryStats) -> None:
    total.sent += more.sent
    total.retried += more.retried
    total.failed += more.failed
