"""Everything a process needs at run time, built once from ``Settings`` and passed explicitly.

The API, the arq worker, the DICOM gateway and the CLI all make one ``Runtime``; request
handlers reach it through ``request.app.state.runtime``, jobs through ``ctx["runtime"]``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.config import Settings
from radrelay.kit import db, events, jobs
from radrelay.kit.db import Database
from radrelay.kit.storage import Storage, open_storage


class Runtime:
    def __init__(self, settings: Settings):
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.tmp_dir.mkdir(parents=True, exist_ok=True)
        # Read once: resolving may read the key file, and every authenticated request needs it.
        self.secret_key = settings.resolved_secret_key()
        self.db = Database(settings.resolved_database_url)
        self.storage: Storage = open_storage(settings.resolved_storage_url, settings)
        self.events = events.EventBus(
            settings.redis_url,
            events.channel_for(settings.queue_name),
            settings.redis_read_timeout_seconds,
        )
        self.jobs: jobs.JobQueue | None = None
        # Process-local state that domains keep (by name) for the life of this runtime: caches,
        # worker pools. Anything that must be released registers a closer with ``on_close``.
        self.local: dict[str, Any] = {}
        self._closers: list[Callable[[], Any]] = []

    def on_close(self, closer: Callable[[], Any]) -> None:
        """``closer`` runs at ``close()``, last registered first; it may be a coroutine
        function (to flush something to the database before it goes)."""
        self._closers.append(closer)

    async def start(
        self,
        *,
        run_jobs_here: bool,
        functions: Iterable[jobs.JobFunction] = (),
        periodic: Iterable[jobs.Periodic] = (),
        listen_events: bool = False,
    ) -> None:
        """``run_jobs_here``: no Redis, so this process runs jobs and periodic jobs itself."""
        if self.settings.redis_url:
            self.jobs = jobs.ArqQueue(
                self.settings.redis_url,
                self.settings.queue_name,
                self.settings.redis_read_timeout_seconds,
            )
        elif run_jobs_here:
            self.jobs = jobs.InProcessQueue(functions, periodic, ctx={"runtime": self})
        else:
            raise RuntimeError(
                "without RADRELAY_REDIS_URL, jobs run inside `radrelay serve`; "
                "set RADRELAY_REDIS_URL to run separate processes"
            )
        await self.jobs.start()
        await self.events.start(listen=listen_events)

    async def close(self) -> None:
        if self.jobs is not None:
            await self.jobs.close()
        for closer in reversed(self._closers):
            result = closer()
            if inspect.isawaitable(result):
                await result
        await self.events.close()
        await self.db.dispose()

    @asynccontextmanager
    async def uow(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commit at the end, then send its buffered jobs and live events."""
        async with self.db.unit_of_work() as session:
            yield session
        await self.after_commit(session.info)

    async def after_commit(self, info: dict[str, Any]) -> None:
        for callback in info.pop(db.ON_COMMIT, ()):
            callback()
        pending_jobs = info.pop(jobs.PENDING, None)
        if pending_jobs:
            if self.jobs is None:
                raise RuntimeError("jobs were enqueued but this process has no job queue")
            await self.jobs.send(pending_jobs)
        pending_events = info.pop(events.PENDING, None)
        if pending_events:
            await self.events.send(pending_events)
