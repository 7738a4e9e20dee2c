"""`[database] schema`, `pool_size` and `prepared_statements`: one school's place in a shared
PostgreSQL, checked before anything connects."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.pool import NullPool, QueuePool

from credmail.adapters.db.engine import make_engine, schema_of
from credmail.bootstrap import database_engine
from credmail.config import ConfigError, Settings, load_settings
from tests.support.wiring import IDENTITY

PG = "postgresql://credmail@127.0.0.1/credmail"


def settings_from(tmp_path: Path, database: str) -> Settings:
    path = tmp_path / "credmail.toml"
    path.write_text("[database]\n" + database)
    return load_settings(path, environ=IDENTITY)


def test_schema_is_refused_for_sqlite(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        settings_from(tmp_path, 'url = "sqlite:///credmail.db"\nschema = "school_a"\n')
    assert "schema is for PostgreSQL only" in str(error.value)


@pytest.mark.parametrize("name", ["School", "a-b", "1abc", "x;drop", "a" * 64])
def test_schema_must_be_a_plain_postgresql_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError) as error:
        settings_from(tmp_path, f'url = "{PG}"\nschema = "{name}"\n')
    assert "schema must be a lower-case PostgreSQL name" in str(error.value)


def test_pool_size_is_bounded(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        settings_from(tmp_path, f'url = "{PG}"\npool_size = -1\n')
    assert "pool_size" in str(error.value)


def test_the_engine_follows_the_settings_without_connecting(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        f'url = "{PG}"\nschema = "school_a"\npool_size = 0\nprepared_statements = false\n',
    )
    engine = database_engine(settings)
    assert schema_of(engine) == "school_a"
    assert isinstance(engine.pool, NullPool)
    default = make_engine(PG)
    assert schema_of(default) is None
    assert isinstance(default.pool, QueuePool) and default.pool.size() == 5
    assert schema_of(make_engine("sqlite://")) is None
