"""What every desk shares: the error worded for the person who asked."""

from __future__ import annotations


class DeskError(Exception):
    """An operation that cannot be carried out, worded for the person at the door."""
