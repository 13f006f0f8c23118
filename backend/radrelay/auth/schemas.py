"""Who is calling: roles, the principal carried by an access token, token responses."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, Field


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
