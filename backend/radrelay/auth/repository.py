"""SQL for users, refresh tokens and login throttling."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.models import AuditEvent, RefreshToken, User

LOGIN_FAILED = "auth.login_failed"


class UserRepository:
    async def by_username(self, session: AsyncSession, username: str) -> User | None:
        return await session.scalar(select(User).where(User.username == username))

    async def by_id(self, session: AsyncSession, user_id: int) -> User | None:
        return await session.get(User, user_id)

    async def all(self, session: AsyncSession) -> list[User]:
        return list(await session.scalars(select(User).order_by(User.username)))

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


users = UserRepository()
