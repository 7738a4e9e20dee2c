"""Rows for the upgrade walk (tests/integration/test_upgrade_walk.py): one module per
migration, written once and kept, named `r<revision>.py` (any name works; `REVISION` says
which migration it belongs to). Each module has

- `REVISION`: the migration's revision id;
- `ROWS`: rows the database may hold at that revision and not before (a new table's, or
  new rows of an older table using its new columns), as {table: [{column: value}]},
  raw values (datetimes as "YYYY-MM-DD HH:MM:SS" text, JSON as json.dumps text, booleans
  as bool), in an order the foreign keys accept;
- `migrated(rows)` (optional): what the migration does to the rows that were there before
  it, applied to the same structure (a new column's value for old rows, a rewritten key,
  a dropped table's rows gone).

The database at revision R holds every earlier module's ROWS, each carried through the
`migrated` of every migration up to R, plus R's own ROWS.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
from collections.abc import Callable
from types import ModuleType
from typing import Any

Row = dict[str, Any]
Rows = dict[str, list[Row]]


def by_revision() -> dict[str, ModuleType]:
    modules = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        modules[module.REVISION] = module
    return modules


def _migrated(module: ModuleType) -> Callable[[Rows], None]:
    return getattr(module, "migrated", lambda rows: None)


def held_at(order: list[str], revision: str) -> Rows:
    """The rows a database at `revision` holds (order: the revisions, oldest first)."""
    modules = by_revision()
    rows: Rows = {}
    for name in order[: order.index(revision) + 1]:
        _migrated(modules[name])(rows)
        for table, added in modules[name].ROWS.items():
            rows.setdefault(table, []).extend(copy.deepcopy(added))
    return rows


def after_upgrade(order: list[str], revision: str, rows: Rows) -> Rows:
    """What `rows`, held at `revision`, become once every later migration has run."""
    modules = by_revision()
    expected = copy.deepcopy(rows)
    for name in order[order.index(revision) + 1 :]:
        _migrated(modules[name])(expected)
    return expected


def add_column(rows: Rows, table: str, **values: Any) -> None:
    """A migration's new columns, as every existing row of `table` gets them."""
    for row in rows.get(table, []):
        row.update(values)
