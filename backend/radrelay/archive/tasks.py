"""Jobs of the archive domain. Each is safe to run twice."""

from __future__ import annotations

from typing import Any

from radrelay.archive import offload


async def offload_objects(ctx: dict[str, Any], hospital_id: int) -> int:
    """Send a hospital's objects waiting in the receive cache to object storage."""
    return await offload.send_waiting(ctx["runtime"], hospital_id)


async def offload_sweep(ctx: dict[str, Any]) -> int:
    """Periodic: objects left waiting in the receive cache are sent again; the caches are
    tidied."""
    return await offload.sweep(ctx["runtime"])
