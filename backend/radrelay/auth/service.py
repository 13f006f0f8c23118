"""Signing in, refreshing, and managing users."""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from pwdlib import PasswordHash
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.audit.service import audit
from radrelay.auth import tokens
from radrelay.auth.repository import LOGIN_FAILED, users
from radrelay.auth.schemas import Principal, Role, TokenResponse, UserCreate, UserUpdate
from radrelay.config import Settings
from radrelay.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthenticated,
)
from radrelay.hospitals.service import hospitals
from radrelay.kit import events
from radrelay.kit.db import Database, utcnow
from radrelay.kit.runtime import Runtime
from radrelay.models import RefreshToken, User

# argon2id with pwdlib's recommended parameters.
password_hash = PasswordHash.recommended()
# Verified against when the username is unknown, so a wrong username costs as much time as a
# wrong password and does not reveal which accounts exist.
_DUMMY_HASH = password_hash.hash(secrets.token_urlsafe(16))
# How long a process trusts what it last read of an account before reading it again: a
# deactivated user's access token stops working within this, not at its expiry (15 minutes).
ACCOUNT_RECHECK_SECONDS = 30.0
# A live event for the ``/ws`` handlers, never passed on to a client.
ACCOUNT_CHANGED = "account.changed"
DEACTIVATED = "This account is deactivated: ask an administrator to activate it again."


def principal_of(user: User, ip: str = "") -> Principal:
    return Principal(user.id, user.username, Role(user.role), user.hospital_id, ip)


class AuthService:
    async def login(
        self, db: Database, settings: Settings, username: str, password: str, ip: str
    ) -> TokenResponse:
        now = utcnow()
        since = now - timedelta(minutes=settings.login_window_minutes)
        retry = settings.login_window_minutes * 60
        async with db.unit_of_work() as session:
            if await users.failures_since(session, since=since, username=username) >= (
                settings.login_max_failures_per_account
            ):
                raise TooManyRequests(
                    "Too many failed sign-ins for this account: wait, then try again.",
                    retry_after=retry,
                )
            if await users.failures_since(session, since=since, ip=ip) >= (
                settings.login_max_failures_per_address
            ):
                raise TooManyRequests(
                    "Too many failed sign-ins from this address: wait, then try again.",
                    retry_after=retry,
                )
            user = await users.by_username(session, username)
            ok = password_hash.verify(password, user.password_hash if user else _DUMMY_HASH)
            if user is not None and ok and user.active:
                principal = principal_of(user, ip)
                response = await self._issue(session, settings, user, principal, family=None)
                audit.record(
                    session, principal, "auth.login", object_type="user", object_id=user.id
                )
                return response
        inactive = user is not None and ok
        # Recorded in its own transaction: the failure must be kept although the request fails.
        await audit.record_now(
            db,
            None,
            LOGIN_FAILED,
            object_type="user",
            object_id=username[:128],
            ip=ip,
            outcome="failure",
            detail={"reason": "inactive" if inactive else "bad_credentials"},
        )
        # Only who knows the password learns that the account exists but is deactivated.
        raise Unauthenticated(DEACTIVATED if inactive else "Wrong username or password.")

    async def confirm_signer(
        self,
        db: Database,
        settings: Settings,
        principal: Principal,
        username: str,
        password: str,
        purpose: str,
    ) -> None:
        """The signed-in user types both components of their electronic signature again, their
        username and their password, to sign. 21 CFR 11.200(a)(1) asks for both components
        when signings are not part of one continuous session; we ask for both at every
        signature (the stricter reading), and a stolen token alone must not sign.

        The username must be the signed-in user's, compared exactly as at sign-in (the database
        compares case-sensitively). A wrong username and a wrong password are one failure: the
        same 403 and message (the answer does not say which component was wrong), audited and
        counted with failed sign-ins of the signed-in account, so the same throttle stops
        guessing here; the token stays good.

        Call it before the request's session runs a query: on SQLite it takes the one
        connection."""
        now = utcnow()
        since = now - timedelta(minutes=settings.login_window_minutes)
        async with db.unit_of_work() as session:
            if await users.failures_since(session, since=since, username=principal.username) >= (
                settings.login_max_failures_per_account
            ):
                raise TooManyRequests(
                    "Too many wrong usernames or passwords for this account: wait, then try again.",
                    retry_after=settings.login_window_minutes * 60,
                )
            user = await users.by_id(session, principal.user_id)
        hashed = user.password_hash if user is not None else _DUMMY_HASH
        # Verified even when the username is wrong, so the time taken does not tell which
        # component failed. argon2 costs tens of milliseconds of CPU: off the event loop.
        ok = await asyncio.to_thread(password_hash.verify, password, hashed)
        # Compared with the account as stored, not the token's copy of the username.
        same_user = user is not None and hmac.compare_digest(
            username.encode(), user.username.encode()
        )
        if user is not None and user.active and same_user and ok:
            return
        # Counted under the signed-in account whatever username was typed: the throttle is on
        # the account the token signs for.
        await audit.record_now(
            db,
            principal,
            LOGIN_FAILED,
            object_type="user",
            object_id=principal.username[:128],
            outcome="failure",
            detail={"reason": "bad_credentials", "purpose": purpose},
        )
        raise Forbidden("Wrong username or password: nothing was signed.")

    async def refresh(
        self, db: Database, settings: Settings, refresh_token: str, ip: str
    ) -> TokenResponse:
        now = utcnow()
        reused = False
        async with db.unit_of_work() as session:
            row = await users.refresh_token(session, tokens.hash_refresh_token(refresh_token))
            if row is None or row.expires_at <= now:
                raise Unauthenticated("The refresh token is unknown or expired: sign in again.")
            grace = timedelta(seconds=settings.refresh_reuse_grace_seconds)
            if row.revoked_at is not None and not (row.rotated and now - row.revoked_at <= grace):
                # A used token came back: someone else has a copy. End the whole chain.
                await users.revoke_family(session, row.family, now)
                reused = True
            else:
                # Unused, or used moments ago: a client whose answer was lost on the network (or
                # two tabs refreshing at once) retries with the same token and is let through.
                user = await users.by_id(session, row.user_id)
                if user is None or not user.active:
                    raise Unauthenticated(DEACTIVATED)
                if row.revoked_at is None:
                    row.revoked_at = now
                    row.rotated = True
                return await self._issue(
                    session, settings, user, principal_of(user, ip), row.family
                )
        if reused:
            await audit.record_now(
                db,
                None,
                "auth.refresh_reused",
                object_type="user",
                object_id=row.user_id,
                ip=ip,
                outcome="failure",
            )
        raise Unauthenticated("The refresh token was already used: sign in again.")

    async def logout(self, db: Database, refresh_token: str, ip: str) -> None:
        now = utcnow()
        async with db.unit_of_work() as session:
            row = await users.refresh_token(session, tokens.hash_refresh_token(refresh_token))
            if row is None:
                return  # unknown or already gone: signing out twice is fine
            await users.revoke_family(session, row.family, now)
            # A sign-out must not count as a rotation that a grace window would honour.
            row.rotated = False
            audit.record(
                session, None, "auth.logout", object_type="user", object_id=row.user_id, ip=ip
            )

    async def _issue(
        self,
        session: AsyncSession,
        settings: Settings,
        user: User,
        principal: Principal,
        family: str | None,
    ) -> TokenResponse:
        now = utcnow()
        ttl = timedelta(minutes=settings.access_token_minutes)
        access = tokens.issue_access_token(principal, settings.resolved_secret_key(), now, ttl)
        refresh, refresh_hash = tokens.new_refresh_token()
        session.add(
            RefreshToken(
                user_id=user.id,
                token_hash=refresh_hash,
                family=family or secrets.token_hex(16),
                expires_at=now + timedelta(days=settings.refresh_token_days),
            )
        )
        return TokenResponse(
            access_token=access,
            expires_in=int(ttl.total_seconds()),
            refresh_token=refresh,
            role=principal.role,
            hospital_id=principal.hospital_id,
        )

    async def create_user(self, session: AsyncSession, data: UserCreate) -> tuple[User, bool]:
        """Idempotent on the username: an existing user keeps its id and gets the given role,
        hospital, name and password. Returns (user, created)."""
        hospital_id = None
        if data.role == Role.tech:
            if not data.hospital_code:
                raise BadRequest("A technician must belong to a hospital: give its code.")
            hospital_id = (await hospitals.get_by_code(session, data.hospital_code)).id
        elif data.hospital_code:
            raise BadRequest("Only technicians belong to one hospital.")
        hashed = password_hash.hash(data.password)
        user = await users.by_username(session, data.username)
        created = user is None
        if user is None:
            user = User(username=data.username, password_hash=hashed, role=data.role.value)
            session.add(user)
        user.display_name = data.display_name or user.display_name or data.username
        user.password_hash = hashed
        user.role = data.role.value
        user.hospital_id = hospital_id
        user.active = True
        await session.flush()
        return user, created

    async def update_user(
        self, session: AsyncSession, actor: Principal, user_id: int, data: UserUpdate
    ) -> tuple[User, bool]:
        """Change an existing user's name, a technician's hospital, the password or whether the
        account is active; what ``data`` leaves out stays. A new password or a deactivation
        ends the user's sessions (their refresh tokens are deleted). Audited as ``user.update``
        (the names of the fields changed, never a password) and ``user.deactivate`` /
        ``user.activate``. Returns (user, deactivated now)."""
        user = await users.by_id(session, user_id)
        if user is None:
            raise NotFound(f"No user {user_id}.")
        changed: list[str] = []
        detail: dict[str, object] = {}
        if data.display_name is not None and data.display_name != user.display_name:
            user.display_name = data.display_name
            changed.append("display_name")
        if "hospital_code" in data.model_fields_set:
            hospital_id = await self._hospital_of(session, user, data.hospital_code)
            if hospital_id != user.hospital_id:
                detail["hospital_id"] = {"from": user.hospital_id, "to": hospital_id}
                user.hospital_id = hospital_id
                changed.append("hospital")
        if data.password is not None:
            # argon2 costs tens of milliseconds of CPU: off the event loop.
            user.password_hash = await asyncio.to_thread(password_hash.hash, data.password)
            changed.append("password")
        deactivated = activated = False
        if data.active is not None and data.active != user.active:
            if not data.active:
                await self._check_may_deactivate(session, actor, user)
            user.active = data.active
            deactivated, activated = not data.active, data.active
        if "password" in changed or deactivated:
            await users.end_sessions_of(session, user.id)
        if deactivated or "hospital" in changed:
            # Open live connections of the user check their account again (``live``).
            events.publish(session, {"type": ACCOUNT_CHANGED, "user_id": user.id})
        await session.flush()
        if changed:
            audit.record(
                session,
                actor,
                "user.update",
                object_type="user",
                object_id=user.id,
                detail={"fields": changed, **detail},
            )
        if deactivated or activated:
            audit.record(
                session,
                actor,
                "user.deactivate" if deactivated else "user.activate",
                object_type="user",
                object_id=user.id,
            )
        return user, deactivated

    async def _hospital_of(self, session: AsyncSession, user: User, code: str | None) -> int | None:
        if user.role != Role.tech.value:
            if code:
                raise BadRequest(
                    f"Only technicians belong to one hospital; {user.username} is a {user.role}."
                )
            return None
        if not code:
            raise BadRequest("A technician must belong to a hospital: give its code.")
        try:
            return (await hospitals.get_by_code(session, code)).id
        except NotFound as exc:
            # About the payload, not the user the path names: a 400, not a 404.
            raise BadRequest(f"No hospital with code {code!r}: choose one that exists.") from exc

    async def _check_may_deactivate(
        self, session: AsyncSession, actor: Principal, user: User
    ) -> None:
        if user.id == actor.user_id:
            raise Conflict("You cannot deactivate your own account: another administrator has to.")
        if user.role == Role.admin.value and await users.lock_active_admins(session) == [user.id]:
            raise Conflict(
                f"{user.username} is the last active administrator: make another user an "
                "administrator first."
            )


auth_service = AuthService()


@dataclass(frozen=True)
class _Account:
    read_at: float
    active: bool
    role: str
    hospital_id: int | None


class AccountCheck:
    """Holds access tokens to the users table. A token is checked without the database
    (``tokens.py``) and lives its 15 minutes; this also refuses it once its account is
    deactivated, or its role or hospital changed, as this process last read the account, at
    most ``ACCOUNT_RECHECK_SECONDS`` ago (one read per user and period, not per request). The
    process that makes the change forgets what it read at once (``forget``, after commit)."""

    def __init__(self, db: Database, recheck_seconds: float = ACCOUNT_RECHECK_SECONDS):
        self._db = db
        self._recheck = recheck_seconds
        self._seen: dict[int, _Account] = {}
        # Counts ``forget`` calls: a read that began before one is used once, not kept.
        self._forgets = 0

    async def verify(self, principal: Principal) -> None:
        seen = self._seen.get(principal.user_id)
        if seen is None or time.monotonic() - seen.read_at >= self._recheck:
            forgets = self._forgets
            async with self._db.reading() as session:
                standing = await users.standing(session, principal.user_id)
            active, role, hospital_id = standing or (False, "", None)
            seen = _Account(time.monotonic(), active, role, hospital_id)
            if forgets == self._forgets:
                self._seen[principal.user_id] = seen
        self._judge(principal, seen)

    def verify_known(self, principal: Principal) -> None:
        """Without the database, for the hottest routes: refuses only what was read already
        (the same client's other requests keep it fresh)."""
        seen = self._seen.get(principal.user_id)
        if seen is not None:
            self._judge(principal, seen)

    def forget(self, user_id: int) -> None:
        self._forgets += 1
        self._seen.pop(user_id, None)

    @staticmethod
    def _judge(principal: Principal, seen: _Account) -> None:
        if not seen.active:
            raise Unauthenticated(DEACTIVATED)
        if seen.role != principal.role.value or seen.hospital_id != principal.hospital_id:
            raise Unauthenticated("An administrator changed this account: sign in again.")


def account_check(runtime: Runtime) -> AccountCheck:
    """The process's one ``AccountCheck``."""
    check: AccountCheck | None = runtime.local.get("auth.accounts")
    if check is None:
        check = runtime.local["auth.accounts"] = AccountCheck(runtime.db)
    return check
