"""The upgrade walk, on SQLite and PostgreSQL: for each migration R, a database is built at
R (Alembic, migrations/versions), filled with the rows a database at R holds (written once
and kept in tests/integration/upgrade_fixtures/), upgraded to the newest revision, and
every row is checked: each is still there with each value, as the later migrations were
meant to leave it, and no other row appeared.

Adding a migration: add ONE file, tests/integration/upgrade_fixtures/r<revision>.py, with
`REVISION = "<its revision id>"`, `ROWS` (rows of its new tables, or new rows using its new
columns, valid at that revision) and, when it changes rows that were there before it (a
new column's value for old rows, a rewritten value, a dropped table), `migrated(rows)`
saying how (see upgrade_fixtures/__init__.py and r0005.py, r0007_uts46_keys.py). The
walk then starts from the new revision too; `test_every_migration_has_its_rows` fails
until the file exists."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from credmail.adapters.db.engine import _alembic_config, make_engine, upgrade
from tests.integration import upgrade_fixtures
from tests.integration.upgrade_fixtures import Rows

pytestmark = pytest.mark.integration

ORDER = [
    s.revision
    for s in reversed(list(ScriptDirectory.from_config(_alembic_config()).walk_revisions()))
]


def test_every_migration_has_its_rows() -> None:
    missing = sorted(set(ORDER) - set(upgrade_fixtures.by_revision()))
    assert missing == [], f"add tests/integration/upgrade_fixtures/r<revision>.py for {missing}"


@pytest.mark.parametrize("revision", ORDER)
def test_rows_written_at_a_revision_survive_the_upgrade_to_the_newest(
    db_url: str, revision: str
) -> None:
    held = upgrade_fixtures.held_at(ORDER, revision)
    expected = upgrade_fixtures.after_upgrade(ORDER, revision, held)
    engine = make_engine(db_url)
    try:
        upgrade(engine, revision)
        _insert(engine, held)
        upgrade(engine)
        found = {table: _read(engine, table, rows) for table, rows in expected.items()}
    finally:
        engine.dispose()
    for table, rows in expected.items():
        want = sorted((_normal_row(row) for row in rows), key=_order)
        assert found[table] == want, f"{table}, from {revision} to the newest"


def _insert(engine: Engine, rows: Rows) -> None:
    with engine.begin() as conn:
        for table, written in rows.items():
            for row in written:
                columns = ", ".join(f'"{c}"' for c in row)
                values = ", ".join(f":{c}" for c in row)
                statement = f'INSERT INTO "{table}" ({columns}) VALUES ({values})'  # noqa: S608
                conn.execute(text(statement), row)


def _read(engine: Engine, table: str, like: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row of `table`, in the columns the expected rows name."""
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text(f'SELECT * FROM "{table}"'))]  # noqa: S608
    columns = set().union(*(row.keys() for row in like)) if like else set()
    return sorted((_normal_row({c: row[c] for c in columns}) for row in rows), key=_order)


def _order(row: dict[str, Any]) -> str:
    return repr(sorted(row.items()))


def _normal_row(row: dict[str, Any]) -> dict[str, Any]:
    return {column: _normal(value) for column, value in row.items()}


def _normal(value: Any) -> Any:
    """One spelling for what the two databases return differently."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, memoryview):
        return bytes(value)
    return value
