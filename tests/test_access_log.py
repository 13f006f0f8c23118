"""The DICOMweb access log writes every counted read, including those counted while an earlier
write is still waiting for the database."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from radrelay.audit.service import AccessLog
from radrelay.auth.schemas import Principal, Role
from radrelay.kit import migrate
from radrelay.kit.db import Database


async def test_reads_counted_during_a_slow_write_are_written(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(migrate.upgrade, url)
    db = Database(url)
    log = AccessLog(db, interval=0.2)
    reader = Principal(1, "dr", Role.radiologist, None)
    # Another process holds SQLite's write lock, so the first flush waits on it.
    blocker = sqlite3.connect(path, isolation_level=None, timeout=30)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        log.record(reader, "dicomweb.retrieve", study_pk=1, hospital_id=1)
        await asyncio.sleep(0.6)  # the flush has started and is waiting for the lock
        log.record(reader, "dicomweb.frames", study_pk=1, hospital_id=1, items=3)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    def actions() -> set[str]:
        with sqlite3.connect(path) as conn:
            return {a for (a,) in conn.execute("SELECT action FROM audit_events")}

    deadline = time.monotonic() + 10
    while actions() != {"dicomweb.retrieve", "dicomweb.frames"}:
        assert time.monotonic() < deadline, f"written: {actions()}"
        await asyncio.sleep(0.1)
    await log.close()
    await db.dispose()
