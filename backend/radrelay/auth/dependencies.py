"""FastAPI dependencies: the runtime, the request's unit of work, and who is calling."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.auth.schemas import Principal, Role
from radrelay.auth.service import account_check
from radrelay.auth.tokens import read_access_token
from radrelay.errors import Forbidden, Unauthenticated
from radrelay.kit.runtime import Runtime

_bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


# Dependencies are ``async def`` although they do not await: FastAPI runs plain ``def`` ones in
# its thread pool, a hop that costs more than their work on every request.


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the endpoint returns, rolled back if it
    raises; buffered jobs and live events go out after the commit."""
    runtime: Runtime = request.app.state.runtime
    async with runtime.uow() as session:
        yield session


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def current_principal(
    request: Request, token: Annotated[str | None, Depends(_bearer)]
) -> Principal:
    """The caller of a valid access token whose account is still active and unchanged (read
    again at most every ``ACCOUNT_RECHECK_SECONDS``, ``auth.service.AccountCheck``)."""
    principal = _principal(request, token)
    await account_check(request.app.state.runtime).verify(principal)
    return principal


def principal_of(request: Request) -> Principal:
    """``current_principal`` without FastAPI's dependency machinery, for the hottest routes;
    the account is checked against what this process read of it already, without a query."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    principal = _principal(request, token if scheme.lower() == "bearer" else None)
    account_check(request.app.state.runtime).verify_known(principal)
    return principal


def _principal(request: Request, token: str | None) -> Principal:
    if not token:
        raise Unauthenticated()
    runtime: Runtime = request.app.state.runtime
    return read_access_token(token, runtime.secret_key, client_ip(request))


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    allowed = frozenset(roles)

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"This needs one of the roles: {names}.")
        return principal

    return dependency


# scope="function": the unit of work commits before the response is sent, so a failed commit is
# an error answer, never a success the database did not keep.
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(require(Role.admin))]
