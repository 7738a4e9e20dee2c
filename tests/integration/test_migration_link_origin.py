"""Migration 0008: links of the September mailing written before it are marked as the
school's (the reset page then never tells those families that they asked)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import MetaData, Table, insert, select
from sqlalchemy.orm import Session

from credmail.adapters.db.engine import make_engine, upgrade
from credmail.adapters.db.models import TokenRow
from credmail.adapters.db.repositories.tokens import SqlTokens
from credmail.service.ports import ORIGIN_CAMPAIGN, ORIGIN_REQUEST

pytestmark = pytest.mark.integration

NOW = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)


def test_older_links_get_their_origin(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0007_uts46_keys")
        with engine.begin() as conn:
            tokens = Table("link_tokens", MetaData(), autoload_with=conn)
            row = dict(
                token_hash="0" * 64,
                state_hash="0" * 64,
                created_at=NOW,
                expires_at=NOW,
                username="S1",
                address="g@example.org",
                address_key="g@example.org",
            )
            conn.execute(
                insert(tokens),
                [
                    dict(selector="c1", purpose="student_first_access", **row),
                    dict(selector="r1", purpose="student_reset", **row),
                ],
            )
        upgrade(engine)
        with engine.connect() as conn:
            stored = dict(conn.execute(select(TokenRow.selector, TokenRow.origin)).all())
        assert stored == {"c1": ORIGIN_CAMPAIGN, "r1": None}

        with Session(engine) as session:
            record = SqlTokens(session).find("r1")
        assert record is not None and record.origin == ORIGIN_REQUEST  # None reads as a request
    finally:
        engine.dispose()
