"""Allows `python -m credmail`."""

from credmail.cli import run

raise SystemExit(run())
