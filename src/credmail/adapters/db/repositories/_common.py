"""Helpers shared by the SQL repositories."""

from __future__ import annotations


def rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
