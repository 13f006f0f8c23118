"""Signing in, refreshing, and managing users."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

from pwdlib import PasswordHash
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.audit.service import audit
from radrelay.auth import tokens
from radrelay.auth.repository import LOGIN_FAILED, users
from radrelay.auth.schemas import Principal, Role, TokenResponse, UserCreate
from radrelay.config import Settings
from radrelay.errors import BadRequest, Forbidden, TooManyRequests, Unauthenticated
from radrelay.hospitals.service import hospitals
from radrelay.kit.db import Database, utcnow
from radrelay.models import RefreshToken, User

# argon2id with pwdlib's recommended parameters.
password_hash = PasswordHash.recommended()
# Verified against when the username is unknown, so a wrong username costs as much time as a
# wrong password and does not reveal which accounts exist.
_DUMMY_HASH = password_hash.hash(secrets.token_urlsafe(16))


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
        # Recorded in its own transaction: the failure must be kept although the request fails.
        await audit.record_now(
            db,
            None,
            LOGIN_FAILED,
            object_type="user",
            object_id=username[:128],
            ip=ip,
            outcome="failure",
            detail={"reason": "inactive" if user is not None and ok else "bad_credentials"},
        )
        raise Unauthenticated("Wrong username or password.")

    async def confirm_password(
        self, db: Database, settings: Settings, principal: Principal, password: str, purpose: str
    ) -> None:
        """The signed-in user enters their password again to sign (21 CFR 11.200: a signature
        outside one continuous session of signings uses both components, and a stolen token
        alone must not sign). Failures are audited and counted with failed sign-ins, so the
        same throttle stops guessing here; they raise 403 (the token stays good).

        Call it before the request's session runs a query: on SQLite it takes the one
        connection."""
        now = utcnow()
        since = now - timedelta(minutes=settings.login_window_minutes)
        async with db.unit_of_work() as session:
            if await users.failures_since(session, since=since, username=principal.username) >= (
                settings.login_max_failures_per_account
            ):
                raise TooManyRequests(
                    "Too many wrong passwords for this account: wait, then try again.",
                    retry_after=settings.login_window_minutes * 60,
                )
            user = await users.by_id(session, principal.user_id)
        hashed = user.password_hash if user is not None else _DUMMY_HASH
        # argon2 costs tens of milliseconds of CPU: off the event loop.
        ok = await asyncio.to_thread(password_hash.verify, password, hashed)
        if user is not None and user.active and ok:
            return
        await audit.record_now(
            db,
            principal,
            LOGIN_FAILED,
            object_type="user",
            object_id=principal.username[:128],
            outcome="failure",
            detail={"reason": "bad_password", "purpose": purpose},
        )
        raise Forbidden("Wrong password: nothing was signed.")

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
                    raise Unauthenticated("This account is disabled.")
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


auth_service = AuthService()
