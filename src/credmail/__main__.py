"""Allows `python -m credmail`."""

from credmail.entrypoints.cli import run

raise SystemExit(run())
