"""Jobs of the dicomweb domain. Each opens its own units of work and is safe to run twice."""

from __future__ import annotations

from typing import Any

from radrelay.dicomweb.service import dicomweb
from radrelay.kit.runtime import Runtime


async def index_study(ctx: dict[str, Any], study_pk: int) -> int:
    """Compute the metadata of a study's objects ahead of the first reader, so that opening the
    case in the viewer reads stored JSON instead of parsing hundreds of files."""
    runtime: Runtime = ctx["runtime"]
    return await dicomweb.index_study(runtime, study_pk)
