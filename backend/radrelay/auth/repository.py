"""SQL for users, refresh tokens and login throttling."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.models import AuditEvent, RefreshToken, User

LOGIN_FAILED = "auth.login_failed"


class UserRepository:
    async def by_username(self, session: AsyncSession, username: str) -> User | None:
        return await session.scalar(select(User).where(User.username == username))

    async def by_id(self, session: AsyncSession, user_id: int) -> User | None:
        return await session.get(User, user_id)

    async def standing(
        self, session: AsyncSession, user_id: int
    ) -> tuple[bool, str, int | None] | None:
        """(active, role, hospital id) of the user: what an access token must still match."""
        row = (
            await session.execute(
                select(User.active, User.role, User.hospital_id).where(User.id == user_id)
            )
        ).first()
        return None if row is None else (bool(row[0]), str(row[1]), row[2])

    async def all(self, session: AsyncSession) -> list[User]:
        return list(await session.scalars(select(User).order_by(User.username)))

    async def lock_active_admins(self, session: AsyncSession) -> list[int]:
        """The active admins' ids, their rows locked until the transaction ends, so that two
        admins deactivating each other at once cannot both succeed (PostgreSQL; SQLite has one
        writer at a time anyway)."""
        rows = await session.scalars(
            select(User.id)
            .where(User.role == "admin", User.active.is_(True))
            .order_by(User.id)
            .with_for_update()
        )
        return [int(i) for i in rows]

    async def failures_since(
        self,
        session: AsyncSession,
        *,
        since: datetime,
        username: str | None = None,
        ip: str | None = None,
    ) -> int:
        query = (
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == LOGIN_FAILED, AuditEvent.at >= since)
        )
        if username is not None:
            query = query.where(AuditEvent.object_id == username)
        if ip is not None:
            query = query.where(AuditEvent.ip == ip)
        return int(await session.scalar(query) or 0)

    async def refresh_token(self, session: AsyncSession, token_hash: str) -> RefreshToken | None:
        return await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
        )

    async def revoke_family(self, session: AsyncSession, family: str, at: datetime) -> None:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.family == family, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        # No grace for any token of a chain that was ended on purpose.
        await session.execute(
            update(RefreshToken).where(RefreshToken.family == family).values(rotated=False)
        )

    async def end_sessions_of(self, session: AsyncSession, user_id: int) -> int:
        """Delete the user's refresh tokens (deactivated, or given a new password); how many.
        Deleted rather than marked revoked: a revoked token presented again reads as a stolen
        copy, and the user's own open tab would raise that alarm at its next refresh."""
        result = await session.execute(delete(RefreshToken).where(RefreshToken.user_id == user_id))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


users = UserRepository()
