"""Migrations go up and down on SQLite and PostgreSQL, and the models match the migrations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from conftest import PG_URL, fresh_postgres_database
from radrelay.kit import migrate
from radrelay.kit.db import make_engine
from radrelay.models import Base

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    else:
        with fresh_postgres_database() as url:
            yield url


def run(url: str, fn):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def tables(url: str) -> set[str]:
    return run(url, lambda c: set(inspect(c).get_table_names())) - {"alembic_version"}


class TestMigrations:
    def test_up_down_up(self, database_url: str) -> None:
        migrate.upgrade(database_url)
        assert tables(database_url) == set(Base.metadata.tables)
        assert migrate.schema_problem(database_url) is None
        migrate.downgrade(database_url, "base")
        assert tables(database_url) == set()
        assert migrate.schema_problem(database_url) == "the database has no schema yet"
        migrate.upgrade(database_url)
        assert tables(database_url) == set(Base.metadata.tables)

    def test_models_match_the_migrations(self, database_url: str) -> None:
        """A model change without its migration would show up here as a difference."""
        migrate.upgrade(database_url)
        diff = run(
            database_url, lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
        )
        assert diff == []
