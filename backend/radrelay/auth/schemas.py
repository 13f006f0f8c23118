"""Who is calling: roles, the principal carried by an access token, token responses."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class Role(StrEnum):
    tech = "tech"  # a hospital technician: sends studies for one hospital, sees its cases
    radiologist = "radiologist"  # reads what is assigned or offered to them
    coordinator = "coordinator"  # watches every queue, reassigns
    admin = "admin"  # manages hospitals and users


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    role: Role
    hospital_id: int | None
    ip: str = ""

    @property
    def sees_all_hospitals(self) -> bool:
        return self.role in (Role.coordinator, Role.admin)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str
    role: Role
    hospital_id: int | None


class RefreshRequest(BaseModel):
    refresh_token: str


class UserRead(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    hospital_id: int | None
    active: bool


class Limits(BaseModel):
    """What the server accepts, so a client can plan its requests."""

    max_upload_bytes: int
    max_instance_bytes: int
    max_zip_members: int


class MeRead(UserRead):
    hospital_code: str | None
    hospital_name: str | None
    limits: Limits


class UserCreate(BaseModel):
    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")
    display_name: str = Field(default="", max_length=200)
    password: str = Field(min_length=8, max_length=256)
    role: Role
    hospital_code: str | None = Field(
        default=None, description="Required for a technician: the hospital they work for."
    )


class UserUpdate(BaseModel):
    """What an admin changes on an existing user; a field left out (or null) stays as it is.
    The username and the role stay: they are what the user is known by in the audit trail."""

    model_config = ConfigDict(extra="forbid")

    display_name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
        | None
    ) = None
    hospital_code: str | None = Field(
        default=None, description="A technician's hospital; only technicians have one."
    )
    password: str | None = Field(
        default=None,
        min_length=8,
        max_length=256,
        description="A new password; the user's sessions end (their refresh tokens are deleted).",
    )
    active: bool | None = Field(
        default=None,
        description="false: the user can no longer sign in and their sessions end; "
        "true: they can sign in again.",
    )
