"""Migration 0010: the web_limits table joins a database that already holds rows (they
stay), takes counters, and goes again on downgrade; rows are written with Core into the
reflected tables, never through today's models."""

from __future__ import annotations

from datetime import datetime

import pytest
from alembic import command
from sqlalchemy import Engine, MetaData, Table, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from credmail.adapters.db.engine import _alembic_config, make_engine, upgrade

pytestmark = pytest.mark.integration

AT = datetime(2026, 12, 1, 9, 0)


def downgrade(engine: Engine, revision: str) -> None:
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes["schema"] = None
        command.downgrade(config, revision)


def test_web_limits_is_added_beside_the_rows_there_and_removed_on_downgrade(
    db_url: str,
) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0009_staff_hardening")
        audit_row = dict(
            at=AT, selector="s1", event="spend", backend="worklist", result="done", client="x"
        )
        with engine.begin() as conn:
            conn.execute(insert(Table("link_audit", MetaData(), autoload_with=conn)), audit_row)
        upgrade(engine, "0010_web_limits")
        with engine.begin() as conn:
            limits = Table("web_limits", MetaData(), autoload_with=conn)
            assert conn.execute(select(limits)).all() == []
            counter = dict(name="post", client="2001:db8:1:2::/64", window_start=1_800_000_000)
            conn.execute(insert(limits), counter | {"hits": 3})
            with pytest.raises(IntegrityError), conn.begin_nested():  # one row per window
                conn.execute(insert(limits), counter | {"hits": 1})
            assert conn.execute(select(limits.c.hits)).scalar_one() == 3
        downgrade(engine, "0009_staff_hardening")
        with engine.connect() as conn:
            assert not inspect(conn).has_table("web_limits")
            audit = Table("link_audit", MetaData(), autoload_with=conn)
            assert conn.execute(select(audit.c.selector)).scalars().all() == ["s1"]
    finally:
        engine.dispose()
