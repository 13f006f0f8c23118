"""Alembic, driven from code: ``radrelay migrate`` and the test suite use the same entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def schema_problem(database_url: str) -> str | None:
    """Why the database cannot be used by this code, or None when it is at the newest revision."""

    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from radrelay.kit.db import make_engine

    async def current() -> str | None:
        engine = make_engine(database_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: MigrationContext.configure(c).get_current_revision()
                )
        finally:
            await engine.dispose()

    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    try:
        revision = _run(current())
    except Exception as exc:
        return f"cannot reach the database: {exc}"
    if revision is None:
        return "the database has no schema yet"
    if revision != head:
        return f"the database schema is at revision {revision}, this code needs {head}"
    return None


def _run(coro: Any) -> Any:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
