"""Migration 0012: review items already there gain an empty deferred_until (still in the
queue), remembered_addresses is created (one row per person and address, gone with the
person) and both go again on downgrade; rows are written with Core into the reflected
tables, never through today's models."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import MetaData, Table, delete, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from credmail.adapters.db.engine import make_engine, upgrade
from tests.integration.test_migration_web_limits import downgrade

pytestmark = pytest.mark.integration

AT = datetime(2026, 12, 1, 9, 0)


def test_deferred_until_and_remembered_addresses_come_and_go(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0010_web_limits")
        item = dict(created_at=AT, status="pending", kind="adult", subject="s", reasons=[])
        person = dict(username="G1", role="guardian", first_name="A", last_name="B")
        with engine.begin() as conn:
            conn.execute(insert(Table("review_items", MetaData(), autoload_with=conn)), item)
            people = Table("people", MetaData(), autoload_with=conn)
            conn.execute(insert(people), person | {"new_student": False, "active": True})
            person_id = conn.execute(select(people.c.id)).scalar_one()
        upgrade(engine, "0012_defer_remember")
        with engine.begin() as conn:
            review = Table("review_items", MetaData(), autoload_with=conn)
            assert conn.execute(select(review.c.deferred_until)).scalar_one() is None
            kept = Table("remembered_addresses", MetaData(), autoload_with=conn)
            row = dict(person_id=person_id, address="a@x.org", address_key="a@x.org")
            row |= dict(added_by="olga (web)", added_at=AT)
            conn.execute(insert(kept), row)
            with pytest.raises(IntegrityError), conn.begin_nested():  # once per person
                conn.execute(insert(kept), row)
        downgrade(engine, "0010_web_limits")
        with engine.connect() as conn:
            assert not inspect(conn).has_table("remembered_addresses")
            columns = {c["name"] for c in inspect(conn).get_columns("review_items")}
            assert "deferred_until" not in columns and "sent_summary" in columns
        upgrade(engine, "0012_defer_remember")
        with engine.begin() as conn:  # gone with the person (ON DELETE CASCADE; SQLite's
            # foreign keys are on in every connection make_engine opens)
            kept = Table("remembered_addresses", MetaData(), autoload_with=conn)
            conn.execute(insert(kept), row)
            people = Table("people", MetaData(), autoload_with=conn)
            conn.execute(delete(people))
            assert conn.execute(select(kept)).all() == []
    finally:
        engine.dispose()
