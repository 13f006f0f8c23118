"""Delivery endpoints of a hospital (admins) and delivery status (technicians of the hospital,
coordinators); a failed delivery is retried by a coordinator."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from radrelay.auth.dependencies import AdminPrincipal, CurrentPrincipal, Session, require
from radrelay.auth.schemas import Principal, Role
from radrelay.delivery.schemas import DeliveryRead, DeliveryStatus, EndpointIn, EndpointRead
from radrelay.delivery.service import deliveries
from radrelay.kit.db import utcnow

router = APIRouter(tags=["delivery"])

StaffPrincipal = Annotated[Principal, Depends(require(Role.coordinator, Role.admin))]


@router.get("/api/hospitals/{code}/delivery-endpoints", response_model=list[EndpointRead])
async def list_endpoints(
    session: Session, principal: AdminPrincipal, code: str
) -> list[EndpointRead]:
    """The hospital's endpoints; secrets are never returned (``has_secret`` says one is set)."""
    return await deliveries.endpoints(session, code)


@router.post(
    "/api/hospitals/{code}/delivery-endpoints", response_model=EndpointRead, status_code=201
)
async def add_endpoint(
    session: Session, principal: AdminPrincipal, code: str, body: EndpointIn
) -> EndpointRead:
    return await deliveries.add_endpoint(session, principal, code, body)


@router.put("/api/hospitals/{code}/delivery-endpoints/{endpoint_id}", response_model=EndpointRead)
async def update_endpoint(
    session: Session, principal: AdminPrincipal, code: str, endpoint_id: int, body: EndpointIn
) -> EndpointRead:
    """Replace the endpoint; a config without ``secret`` keeps the stored secret."""
    return await deliveries.update_endpoint(session, principal, code, endpoint_id, body)


@router.delete("/api/hospitals/{code}/delivery-endpoints/{endpoint_id}", status_code=204)
async def remove_endpoint(
    session: Session, principal: AdminPrincipal, code: str, endpoint_id: int
) -> None:
    """Delete the endpoint, or deactivate it when it has deliveries (their history stays)."""
    await deliveries.remove_endpoint(session, principal, code, endpoint_id)


@router.get("/api/cases/{case_id}/deliveries", response_model=list[DeliveryRead])
async def case_deliveries(
    session: Session, principal: CurrentPrincipal, case_id: int
) -> list[DeliveryRead]:
    return await deliveries.for_case(session, principal, case_id)


@router.get("/api/deliveries", response_model=list[DeliveryRead])
async def list_deliveries(
    session: Session,
    principal: StaffPrincipal,
    status: Annotated[list[DeliveryStatus], Query()] = [],  # noqa: B006 (FastAPI copies it)
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[DeliveryRead]:
    """Deliveries across hospitals, latest change first; ``status`` filters (repeatable)."""
    return await deliveries.by_status(session, status, limit, offset)


@router.post("/api/deliveries/{delivery_id}/retry", response_model=DeliveryRead)
async def retry_delivery(
    session: Session, principal: StaffPrincipal, delivery_id: int
) -> DeliveryRead:
    """A failed delivery tried again now (after its cause, say the endpoint, was fixed)."""
    return await deliveries.retry(session, principal, delivery_id, utcnow())
