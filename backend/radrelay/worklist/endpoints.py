"""The worklist, and what readers and coordinators do with cases: claim, release, assign."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["worklist"])
