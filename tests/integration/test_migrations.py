"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from credmail.adapters.db.engine import is_current, make_engine, upgrade
from credmail.adapters.db.models import Base

pytestmark = pytest.mark.integration


def test_migrations_match_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert not is_current(engine)
        upgrade(engine)
        assert is_current(engine)
        upgrade(engine)  # idempotent
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_head_revision_constant_matches_the_migrations() -> None:
    from alembic.script import ScriptDirectory

    from credmail.adapters.db.engine import HEAD_REVISION, _alembic_config

    assert ScriptDirectory.from_config(_alembic_config()).get_current_head() == HEAD_REVISION
