"""Sign-in (OAuth2 password flow), token refresh, and user management."""

from __future__ import annotations

import contextlib
import functools
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.audit.service import audit
from radrelay.auth.dependencies import (
    AdminPrincipal,
    CurrentPrincipal,
    RuntimeDep,
    Session,
    client_ip,
)
from radrelay.auth.repository import users
from radrelay.auth.schemas import (
    Limits,
    MeRead,
    Principal,
    RefreshRequest,
    Role,
    TokenResponse,
    UserCreate,
    UserRead,
    UserUpdate,
)
from radrelay.auth.service import account_check, auth_service
from radrelay.errors import NotFound, Unauthenticated
from radrelay.experts.schemas import ExpertState
from radrelay.experts.service import experts
from radrelay.hospitals.service import hospitals
from radrelay.kit.db import on_commit, utcnow
from radrelay.kit.runtime import Runtime
from radrelay.routing.service import RoutingContext
from radrelay.worklist.service import worklist

router = APIRouter(prefix="/api", tags=["auth"])


def _user_read(user) -> UserRead:  # type: ignore[no-untyped-def]
    return UserRead.model_validate(user, from_attributes=True)


@router.post("/auth/token", response_model=TokenResponse)
async def sign_in(
    request: Request, runtime: RuntimeDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> TokenResponse:
    """Exchange a username and password for a short-lived access token and a refresh token.
    Failed attempts are audited and throttled per account and per address (429)."""
    return await auth_service.login(
        runtime.db, runtime.settings, form.username, form.password, client_ip(request)
    )


@router.post("/auth/refresh", response_model=TokenResponse)
async def refresh(request: Request, runtime: RuntimeDep, body: RefreshRequest) -> TokenResponse:
    """Trade a refresh token for new tokens. Each refresh token works once."""
    return await auth_service.refresh(
        runtime.db, runtime.settings, body.refresh_token, client_ip(request)
    )


@router.post("/auth/logout", status_code=204)
async def sign_out(request: Request, runtime: RuntimeDep, body: RefreshRequest) -> None:
    """End the session: the refresh token and every token refreshed from it stop working."""
    await auth_service.logout(runtime.db, body.refresh_token, client_ip(request))


@router.get("/me", response_model=MeRead)
async def me(session: Session, runtime: RuntimeDep, principal: CurrentPrincipal) -> MeRead:
    """The signed-in user, their hospital, and the server's request limits."""
    user = await users.by_id(session, principal.user_id)
    if user is None or not user.active:
        raise Unauthenticated("This account no longer exists or is disabled.")
    hospital = (
        await hospitals.get(session, user.hospital_id) if user.hospital_id is not None else None
    )
    settings = runtime.settings
    return MeRead(
        **_user_read(user).model_dump(),
        hospital_code=hospital.code if hospital else None,
        hospital_name=hospital.name if hospital else None,
        limits=Limits(
            max_upload_bytes=settings.max_upload_bytes,
            max_instance_bytes=settings.max_instance_bytes,
            max_zip_members=settings.max_zip_members,
        ),
    )


@router.get("/users", response_model=list[UserRead])
async def list_users(session: Session, principal: AdminPrincipal) -> list[UserRead]:
    return [_user_read(u) for u in await users.all(session)]


@router.post("/users", response_model=UserRead, status_code=201)
async def create_user(
    session: Session, runtime: RuntimeDep, principal: AdminPrincipal, body: UserCreate
) -> UserRead:
    """Create a user, or update the one with this username (idempotent)."""
    user, created = await auth_service.create_user(session, body)
    # A new role or hospital: tokens that name the old one stop at their next request.
    on_commit(session, functools.partial(account_check(runtime).forget, user.id))
    audit.record(
        session,
        principal,
        "user.create" if created else "user.update",
        object_type="user",
        object_id=user.id,
    )
    return _user_read(user)


@router.patch("/users/{user_id}", response_model=UserRead)
async def update_user(
    session: Session,
    runtime: RuntimeDep,
    principal: AdminPrincipal,
    user_id: int,
    body: UserUpdate,
) -> UserRead:
    """Rename a user, move a technician to another hospital, set a new password, deactivate or
    activate the account; fields left out stay. A new password or a deactivation ends the
    user's sessions; a deactivated user's access token stops working within 30 seconds and
    their live connection closes. Nobody deactivates their own account, nor the last active
    admin (409). A deactivated radiologist goes offline and their unstarted cases and offers go
    back to routing."""
    user, deactivated = await auth_service.update_user(session, principal, user_id, body)
    if deactivated and user.role == Role.radiologist.value:
        await _stand_down(session, runtime, principal, user.id)
    # This process reads the account again at its next request; the others within 30 s.
    on_commit(session, functools.partial(account_check(runtime).forget, user.id))
    return _user_read(user)


async def _stand_down(
    session: AsyncSession, runtime: Runtime, principal: Principal, user_id: int
) -> None:
    """A deactivated radiologist is set offline (routing reads states on every pass, and an
    account activated again does not come back online by itself), and their unstarted cases
    and offers go back to routing now, as when they go offline themself. Cases they are
    reading stay theirs until the lease runs out; the SLA watch then routes them."""
    with contextlib.suppress(NotFound):  # a radiologist without an expert profile
        await experts.set_state(session, principal, user_id, ExpertState.offline)
    # Also when they were offline already: a coordinator may have assigned them cases since.
    await worklist.expert_offline(session, RoutingContext.of(runtime), user_id, utcnow())
