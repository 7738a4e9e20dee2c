"""structlog set-up, done by the entry point: JSON off a terminal, console on one, always
to standard error (a command's standard output is its output alone).

The daemon's commands (`run`, `web`) log at `logging.level`; every other command is
interactive and logs only warnings and errors, unless asked for more with -v (info) or
-vv (debug)."""

from __future__ import annotations

import logging
import sys

import structlog

LEVELS = ("debug", "info", "warning", "error")  # from the most to the least verbose


def command_level(configured: str, verbose: int = 0, daemon: bool = False) -> str:
    """The level a command logs at: see the module's docstring."""
    level = configured if daemon else max(configured, "warning", key=LEVELS.index)
    if verbose:
        level = min(level, "info" if verbose == 1 else "debug", key=LEVELS.index)
    return level


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    numeric = getattr(logging, level.upper(), logging.INFO)
    # credmail logs through structlog; stdlib logging is only the libraries', and their
    # debug output can hold message data, so it stays at WARNING whatever the level.
    logging.basicConfig(
        level=logging.WARNING, handlers=[CurrentStderrHandler()], format="%(message)s", force=True
    )
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *_args: StderrLogger(),
        cache_logger_on_first_use=False,
    )


class StderrLogger:
    """Writes each rendered line to the current sys.stderr (looked up at every write)."""

    def msg(self, message: str) -> None:
        stream = sys.stderr  # one write per line: a forked delivery process shares it
        stream.write(message + "\n")
        stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = msg


class CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stdlib handler that writes to whatever sys.stderr is at the time of the record."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        return None
