"""A bound on stopping: from SIGTERM to exit in at most `daemon.shutdown_seconds`,
whatever the mail and database servers do (Kubernetes kills the pod at its
terminationGracePeriodSeconds, systemd at TimeoutStopSec: both must be longer).

A stop first lets each thread finish what it holds (the message in hand, the mail being
sent). A thread still blocked at JOIN_SHARE of the bound, on a server that stopped
answering (`mailbox.timeout_seconds` can be a minute), is left behind: the process exits
around it, as after a kill, and crash safety covers it (a decision is committed before
its message moves, an unfinished move is finished at the next start, a reply not marked
sent is sent again with the same Message-ID). Should the exit itself hang, the process
ends at the bound regardless."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

import structlog

JOIN_SHARE = 0.8  # of the bound: what is left is for logging and closing the database
EXIT_FORCED = 1


class ShutdownBound:
    def __init__(self, seconds: float, exit_now: Callable[[int], None] = os._exit) -> None:
        self.seconds = seconds
        self.exit_now = exit_now
        self.started: float | None = None
        self.log = structlog.get_logger("credmail.daemon")

    def start(self) -> None:
        """The stop begins now (a second call changes nothing)."""
        if self.started is not None:
            return
        self.started = time.monotonic()
        timer = threading.Timer(self.seconds, self._force)
        timer.daemon = True  # never what keeps the process alive
        timer.start()

    def join(self, thread: threading.Thread) -> bool:
        """Wait for `thread` until JOIN_SHARE of the bound; False when it is still busy."""
        self.start()
        assert self.started is not None
        left = self.started + self.seconds * JOIN_SHARE - time.monotonic()
        thread.join(timeout=max(0.0, left))
        return not thread.is_alive()

    def _force(self) -> None:
        self.log.error("daemon.shutdown_forced", shutdown_seconds=self.seconds)
        sys.stderr.flush()
        self.exit_now(EXIT_FORCED)
