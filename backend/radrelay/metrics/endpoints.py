"""Turnaround metrics for coordinators, and Prometheus ``/metrics`` for operations."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["metrics"])
