"""SQL for expert profiles, their lists, and their load.

Many experts are read at once (the roster, routing), so every read takes the set of experts as
a subquery of user ids and returns a dict per expert: a handful of queries whatever the count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.cases.schemas import HELD_STATUSES
from radrelay.experts.schemas import Subspecialty, WeeklyShift
from radrelay.models import (
    Case,
    Expert,
    ExpertCredential,
    ExpertShift,
    ExpertSubspecialty,
    ExpertWindow,
    Hospital,
    User,
)

# Reads select table columns, not mapped entities: plain rows cost a fraction of ORM objects,
# and routing loads the roster for every decision.
_expert = Expert.__table__.c
_user = User.__table__.c
_level = ExpertSubspecialty.__table__.c
_credential = ExpertCredential.__table__.c
_shift = ExpertShift.__table__.c
_window = ExpertWindow.__table__.c
_hospital = Hospital.__table__.c
_case = Case.__table__.c

Ids = Select[tuple[int]]


class ExpertRepository:
    async def user(self, session: AsyncSession, user_id: int) -> User | None:
        return await session.get(User, user_id)

    async def get(self, session: AsyncSession, user_id: int) -> Expert | None:
        return await session.get(Expert, user_id)

    def ids(
        self,
        *,
        user_id: int | None = None,
        only_active: bool = True,
        state: str | None = None,
        subspecialty: str | None = None,
        credentialed_for: int | None = None,
        valid_at: datetime | None = None,
    ) -> Ids:
        """The user ids of the experts that match, as a subquery for the reads below.
        ``only_active``: active radiologists only. ``credentialed_for`` a hospital id, with
        ``valid_at``: only credentials not expired then."""
        query = select(_expert.user_id)
        if only_active:
            query = query.join(User.__table__, _user.id == _expert.user_id).where(
                _user.active.is_(True), _user.role == "radiologist"
            )
        if user_id is not None:
            query = query.where(_expert.user_id == user_id)
        if state is not None:
            query = query.where(_expert.state == state)
        if subspecialty is not None:
            query = query.where(
                select(_level.user_id)
                .where(_level.user_id == _expert.user_id, _level.subspecialty == subspecialty)
                .exists()
            )
        if credentialed_for is not None:
            held = [
                _credential.user_id == _expert.user_id,
                _credential.hospital_id == credentialed_for,
            ]
            if valid_at is not None:
                held.append(
                    or_(_credential.expires_at.is_(None), _credential.expires_at > valid_at)
                )
            query = query.where(select(_credential.user_id).where(*held).exists())
        return query

    async def heads(self, session: AsyncSession, ids: Ids) -> Sequence[Any]:
        """Rows with the ``experts`` columns and the user's username, display_name and active,
        by username."""
        result = await session.execute(
            select(*_expert, _user.username, _user.display_name, _user.active)
            .join(User.__table__, _user.id == _expert.user_id)
            .where(_expert.user_id.in_(ids))
            .order_by(_user.username)
        )
        return result.all()

    async def subspecialties(
        self, session: AsyncSession, ids: Ids
    ) -> dict[int, dict[Subspecialty, int]]:
        out: dict[int, dict[Subspecialty, int]] = defaultdict(dict)
        rows = await session.execute(
            select(_level.user_id, _level.subspecialty, _level.level).where(_level.user_id.in_(ids))
        )
        for user_id, subspecialty, level in rows:
            out[user_id][Subspecialty(subspecialty)] = level
        return out

    async def credentials(
        self, session: AsyncSession, ids: Ids
    ) -> dict[int, list[tuple[int, str, datetime | None]]]:
        """(hospital id, hospital code, expiry) per expert, by code."""
        out: dict[int, list[tuple[int, str, datetime | None]]] = defaultdict(list)
        rows = await session.execute(
            select(
                _credential.user_id, _credential.hospital_id, _hospital.code, _credential.expires_at
            )
            .join(Hospital.__table__, _hospital.id == _credential.hospital_id)
            .where(_credential.user_id.in_(ids))
            .order_by(_hospital.code)
        )
        for user_id, hospital_id, code, expires_at in rows:
            out[user_id].append((hospital_id, code, expires_at))
        return out

    async def hospital_ids(self, session: AsyncSession, user_id: int) -> list[int]:
        """The hospitals the expert holds a credential for."""
        return list(
            await session.scalars(
                select(_credential.hospital_id).where(_credential.user_id == user_id)
            )
        )

    async def shifts(self, session: AsyncSession, ids: Ids) -> dict[int, list[WeeklyShift]]:
        out: dict[int, list[WeeklyShift]] = defaultdict(list)
        rows = await session.execute(
            select(_shift.user_id, _shift.weekday, _shift.start_minute, _shift.end_minute)
            .where(_shift.user_id.in_(ids))
            .order_by(_shift.weekday, _shift.start_minute, _shift.id)
        )
        for user_id, weekday, start, end in rows:
            out[user_id].append(WeeklyShift(weekday, start, end))
        return out

    async def windows(
        self, session: AsyncSession, ids: Ids, *, since: datetime, until: datetime | None = None
    ) -> dict[int, list[tuple[datetime, datetime]]]:
        """One-off windows that end after ``since`` (and start before ``until``)."""
        where: list[Any] = [_window.user_id.in_(ids), _window.ends_at > since]
        if until is not None:
            where.append(_window.starts_at < until)
        out: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
        rows = await session.execute(
            select(_window.user_id, _window.starts_at, _window.ends_at)
            .where(*where)
            .order_by(_window.starts_at)
        )
        for user_id, starts_at, ends_at in rows:
            out[user_id].append((starts_at, ends_at))
        return out

    async def load(self, session: AsyncSession, ids: Ids) -> dict[int, tuple[int, float]]:
        """(open cases, open work units) per expert who holds any."""
        rows = await session.execute(
            select(_case.reader_id, func.count(), func.coalesce(func.sum(_case.work_units), 0.0))
            .where(_case.reader_id.in_(ids), _case.status.in_([st.value for st in HELD_STATUSES]))
            .group_by(_case.reader_id)
        )
        return {user_id: (count, float(units)) for user_id, count, units in rows}

    # --- writes: each list is replaced as a whole --------------------------------------------

    async def replace_subspecialties(
        self, session: AsyncSession, user_id: int, levels: Mapping[str, int]
    ) -> None:
        await session.execute(
            delete(ExpertSubspecialty).where(ExpertSubspecialty.user_id == user_id)
        )
        session.add_all(
            ExpertSubspecialty(user_id=user_id, subspecialty=s, level=lvl)
            for s, lvl in levels.items()
        )

    async def replace_credentials(
        self, session: AsyncSession, user_id: int, expiries: Mapping[int, datetime | None]
    ) -> None:
        await session.execute(delete(ExpertCredential).where(ExpertCredential.user_id == user_id))
        session.add_all(
            ExpertCredential(user_id=user_id, hospital_id=h, expires_at=e)
            for h, e in expiries.items()
        )

    async def replace_shifts(
        self, session: AsyncSession, user_id: int, shifts: Iterable[WeeklyShift]
    ) -> None:
        await session.execute(delete(ExpertShift).where(ExpertShift.user_id == user_id))
        session.add_all(
            ExpertShift(
                user_id=user_id,
                weekday=s.weekday,
                start_minute=s.start_minute,
                end_minute=s.end_minute,
            )
            for s in shifts
        )

    async def replace_windows(
        self, session: AsyncSession, user_id: int, windows: Iterable[tuple[datetime, datetime]]
    ) -> None:
        await session.execute(delete(ExpertWindow).where(ExpertWindow.user_id == user_id))
        session.add_all(
            ExpertWindow(user_id=user_id, starts_at=start, ends_at=end) for start, end in windows
        )


repository = ExpertRepository()
