"""Database engine and the unit of work.

One ``Database`` per process. A unit of work is one session and one transaction: it commits
when the request or job that opened it ends without error, then hands the jobs buffered during
it to the queue (``kit.jobs``). Services only ``flush()``; they never commit on their own, so a
multi-step flow stays atomic.

SQLite (the embedded default) runs in WAL mode behind a single connection per process: SQLite
has one writer at a time anyway, and one connection avoids the deferred-transaction upgrade
failures (SQLITE_BUSY without waiting) that several pooled connections would hit. Keep
transactions short: never hold a session open while streaming a request body or a file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(
            url,
            echo=echo,
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
            connect_args={"timeout": 30},
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_recycle=1800
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin (SQLAlchemy docs,
        # "Serializable isolation / Savepoints / Transactional DDL" for pysqlite).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: each commit syncs the WAL. Ingest acknowledges after the commit and fsyncs files
        # before it; NORMAL could roll back acknowledged rows on a power cut.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so another process (a CLI command) waits on
        # busy_timeout instead of failing when its read transaction would need to write.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _make_read_engine(url: str) -> AsyncEngine:
    """SQLite readers on their own connections, in deferred transactions and query-only: in WAL
    mode they read a snapshot while the one writer writes, so a search or a frame request
    never queues behind ingest."""
    engine = create_async_engine(
        url, pool_size=4, max_overflow=4, pool_timeout=60, connect_args={"timeout": 30}
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


class Database:
    def __init__(self, url: str, *, echo: bool = False):
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self.read_engine = _make_read_engine(url) if is_sqlite(url) else self.engine
        self.read_sessionmaker = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only, ended (rolled back) as soon as the block ends: open it
        around the queries, never around streaming a response."""
        async with self.read_sessionmaker() as session:
            try:
                yield session
            finally:
                await session.rollback()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A session that commits on success and rolls back on error. What was buffered in
        ``session.info`` for after the commit (jobs, live events) stays there only if it committed;
        ``Runtime.uow`` sends it."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                session.info.clear()
                raise

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


ON_COMMIT = "on_commit"


def on_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session has committed (``Runtime.uow``); dropped on rollback.
    For process-local state that must only ever reflect committed rows, such as id caches."""
    session.info.setdefault(ON_COMMIT, []).append(callback)


_INSERTS_IGNORING_CONFLICTS: dict[tuple[str, str, tuple[str, ...], bool], Any] = {}


def insert_ignoring_conflicts(
    session: AsyncSession,
    table: Any,
    conflict_columns: Sequence[str],
    *,
    returning_id: bool = False,
) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the session's dialect, executed with the row (or
    a list of rows: one executemany) as parameters; ``returning_id``: ``RETURNING id``, no row
    when it conflicted.

    Concurrent receivers (several associations, several API processes) create the same patient,
    study or series at the same moment; letting the database arbitrate avoids a lost update and a
    retry loop. Built once per dialect and table: building the dialect's statement took more
    interpreter time than running it (over a third of indexing a new study)."""
    dialect = session.get_bind().dialect.name
    key = (dialect, table.name, tuple(conflict_columns), returning_id)
    stmt = _INSERTS_IGNORING_CONFLICTS.get(key)
    if stmt is None:
        builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = builder(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
        if returning_id:
            stmt = stmt.returning(table.c.id)
        _INSERTS_IGNORING_CONFLICTS[key] = stmt
    return stmt
