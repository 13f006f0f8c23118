"""Expert profiles as admins write them and as the roster shows them, the expert's own settings,
and ``ExpertProfile``, the snapshot routing reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, Field, field_validator, model_validator

from radrelay.cases.schemas import Subspecialty
from radrelay.routing.schemas import Employment, ExpertState, Qualification

__all__ = [
    "CapsUpdate",
    "CredentialIn",
    "CredentialRead",
    "Employment",
    "ExpertProfile",
    "ExpertRead",
    "ExpertState",
    "ExpertUpdate",
    "Qualification",
    "ShiftIn",
    "ShiftRead",
    "StateUpdate",
    "Subspecialty",
    "WeeklyShift",
    "WindowIn",
    "WindowRead",
    "WindowsUpdate",
]

DAY_MINUTES = 24 * 60
# A window longer than a day is almost always a typing mistake (a wrong date), and a reader
# cannot read through it anyway; a long stretch is several windows.
MAX_WINDOW = timedelta(hours=24)

Level = Annotated[int, Field(ge=1, le=3, description="1 reads it .. 3 reference reader")]
Cap = Annotated[int, Field(ge=0)]
Units = Annotated[float, Field(ge=0)]
_START = r"^([01]\d|2[0-3]):[0-5]\d$"
_END = r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$"


class WeeklyShift(NamedTuple):
    """A weekly shift as stored: minutes from the start of ``weekday`` (0 = Monday) in the
    expert's zone; ``end_minute`` is past 1440 when the shift runs past midnight."""

    weekday: int
    start_minute: int
    end_minute: int


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class ShiftIn(BaseModel):
    weekday: int = Field(ge=0, le=6, description="0 = Monday .. 6 = Sunday.")
    start: str = Field(pattern=_START, description='Local wall-clock time "HH:MM".')
    end: str = Field(
        pattern=_END,
        description='"HH:MM", or "24:00" for midnight; an end at or before the start means '
        "the shift runs past midnight into the next day.",
    )

    def stored(self) -> WeeklyShift:
        start, end = _minutes(self.start), _minutes(self.end)
        if end <= start:
            end += DAY_MINUTES
        return WeeklyShift(self.weekday, start, end)


class ShiftRead(BaseModel):
    weekday: int
    start: str
    end: str

    @classmethod
    def of(cls, shift: WeeklyShift) -> ShiftRead:
        # Written the way ShiftIn reads it, so a profile read can be sent back unchanged.
        end = shift.end_minute
        text = "24:00" if end == DAY_MINUTES else _hhmm(end % DAY_MINUTES)
        return cls(weekday=shift.weekday, start=_hhmm(shift.start_minute), end=text)


class CredentialIn(BaseModel):
    hospital_code: str = Field(min_length=1, max_length=32)
    expires_at: AwareDatetime | None = Field(default=None, description="null: no expiry.")


class CredentialRead(BaseModel):
    hospital_id: int
    hospital_code: str
    expires_at: datetime | None
    expired: bool


class ExpertUpdate(BaseModel):
    """The whole profile: a PUT replaces every field and list (one-off windows and the state
    are the expert's own and are kept)."""

    employment: Employment
    qualification: Qualification
    subspecialties: dict[Subspecialty, Level] = Field(
        min_length=1, description='At least one, e.g. {"neuro": 3, "general": 2}.'
    )
    credentials: list[CredentialIn] = Field(default_factory=list, max_length=500)
    cap_open_cases: Cap | None = None
    cap_daily_units: Units | None = None
    timezone: str = Field(default="Asia/Shanghai", description="IANA zone the shifts are in.")
    shifts: list[ShiftIn] = Field(default_factory=list, max_length=100)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone name such as Asia/Shanghai"
            ) from None
        return value

    @field_validator("credentials")
    @classmethod
    def _one_per_hospital(cls, values: list[CredentialIn]) -> list[CredentialIn]:
        codes = [c.hospital_code for c in values]
        repeated = sorted({c for c in codes if codes.count(c) > 1})
        if repeated:
            raise ValueError(f"hospital {', '.join(repeated)} given more than once")
        return values


class WindowIn(BaseModel):
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _sensible(self) -> WindowIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > MAX_WINDOW:
            raise ValueError("a window may last at most 24 hours: give several windows")
        return self


class WindowsUpdate(BaseModel):
    windows: list[WindowIn] = Field(max_length=500)


class WindowRead(BaseModel):
    starts_at: datetime
    ends_at: datetime


class StateUpdate(BaseModel):
    state: ExpertState


class CapsUpdate(BaseModel):
    """Fields left out keep their value; ``null`` clears a cap (the policy's caps apply)."""

    cap_open_cases: Cap | None = None
    cap_daily_units: Units | None = None

    def given(self) -> dict[str, int | float | None]:
        return self.model_dump(include=self.model_fields_set)


class ExpertRead(BaseModel):
    user_id: int
    username: str
    name: str
    active: bool
    employment: Employment
    qualification: Qualification
    state: ExpertState
    state_changed_at: datetime
    subspecialties: dict[Subspecialty, int]
    credentials: list[CredentialRead]
    cap_open_cases: int | None
    cap_daily_units: float | None
    timezone: str
    shifts: list[ShiftRead]
    windows: list[WindowRead] = Field(description="One-off windows that have not ended.")
    available_now: bool
    available_until: datetime | None = Field(description="End of the current window.")
    next_window_start: datetime | None = Field(
        description="Start of the next window that opens after now."
    )
    open_cases: int = Field(description="Cases they hold: assigned or reading.")
    open_units: float
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ExpertProfile:
    """One expert as routing loads them (``experts.roster``). ``credentials`` maps hospital id
    to expiry (None: no expiry), expired ones included; ``availability`` holds merged UTC
    [start, end) windows around the moment the roster was loaded."""

    user_id: int
    name: str
    employment: Employment
    state: ExpertState
    qualification: Qualification
    subspecialties: dict[Subspecialty, int]
    credentials: dict[int, datetime | None]
    availability: tuple[tuple[datetime, datetime], ...]
    cap_open_cases: int | None
    cap_daily_units: float | None


@dataclass(frozen=True)
class SigningProfile:
    """What reporting needs to know of a signer: their printed name, what they may sign, and
    the hospitals they are credentialed for now."""

    user_id: int
    name: str
    qualification: Qualification
    hospital_ids: tuple[int, ...]
