"""The reset page's limit counters (`web_limits`): one row per limit, client key and
window, so that every `credmail web` process of a school counts together.

Each call is its own short transaction. The increment is one statement (INSERT ... ON
CONFLICT DO UPDATE ... WHERE hits < :below RETURNING), atomic on SQLite and PostgreSQL
alike: two processes can never count past the limit between them. Commits are
crash-safe only (a count lost with the machine just lets a client try a little more).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from credmail.adapters.db.engine import CRASH_SAFE, READ_ONLY
from credmail.adapters.db.models import WebLimitRow

KEY_LENGTH = 64  # WebLimitRow.client


class SqlWebLimits:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        insert = sqlite_insert if engine.dialect.name == "sqlite" else postgresql_insert
        self._insert: Any = insert

    def counts(self, name: str, client: str, windows: tuple[int, int]) -> tuple[int, int]:
        """The hits of `client` in the two windows (previous, current)."""
        query = select(WebLimitRow.window_start, WebLimitRow.hits).where(
            WebLimitRow.name == name,
            WebLimitRow.client == client[:KEY_LENGTH],
            WebLimitRow.window_start.in_(windows),
        )
        with self._connect(READ_ONLY) as conn, conn.begin():
            found = {start: hits for start, hits in conn.execute(query).all()}
        return found.get(windows[0], 0), found.get(windows[1], 0)

    def add(
        self, name: str, client: str, window: int, below: int, purge_before: int | None = None
    ) -> bool:
        """One hit more for `client` in `window`, unless it already has `below`: False then.
        With `purge_before`, this limit's rows of older windows are deleted first."""
        if below < 1:
            return False
        values = {"name": name, "client": client[:KEY_LENGTH], "window_start": window}
        statement = (
            self._insert(WebLimitRow)
            .values(**values, hits=1)
            .on_conflict_do_update(
                index_elements=[WebLimitRow.name, WebLimitRow.client, WebLimitRow.window_start],
                set_={"hits": WebLimitRow.hits + 1},
                where=WebLimitRow.hits < below,
            )
            .returning(WebLimitRow.hits)
        )
        with self._connect(CRASH_SAFE) as conn, conn.begin():
            if purge_before is not None:
                old = (WebLimitRow.name == name) & (WebLimitRow.window_start < purge_before)
                conn.execute(delete(WebLimitRow).where(old))
            return conn.execute(statement).first() is not None

    def _connect(self, option: str) -> Connection:
        return self.engine.connect().execution_options(**{option: True})
