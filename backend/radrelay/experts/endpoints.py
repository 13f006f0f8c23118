"""Experts: profiles (admin), the roster with load (coordinators), self-service (readers)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/experts", tags=["experts"])
