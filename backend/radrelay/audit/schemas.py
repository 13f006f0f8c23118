"""The audit trail as an admin reads it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEventRead(BaseModel):
    at: datetime
    actor_id: int | None
    actor_role: str
    hospital_id: int | None
    action: str
    object_type: str
    object_id: str
    ip: str
    outcome: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEventRead]
    limit: int
    offset: int
