"""Hospitals, their calling AE titles and delivery endpoints."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, Field, field_validator

AE_PATTERN = r"^[\x21-\x5B\x5D-\x7E](?:[\x20-\x5B\x5D-\x7E]{0,14}[\x21-\x5B\x5D-\x7E])?$"


class AETitleIn(BaseModel):
    ae_title: str = Field(
        pattern=AE_PATTERN,
        description="1-16 printable ASCII characters, no backslash, no leading/trailing space.",
    )
    source_addresses: list[str] = Field(
        default_factory=list,
        description="IP addresses or networks (CIDR) the AE may call from; empty means any.",
    )

    @field_validator("source_addresses")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        out = []
        for value in values:
            try:
                out.append(str(ipaddress.ip_network(value.strip(), strict=False)))
            except ValueError as exc:
                raise ValueError(f"{value!r} is not an IP address or network") from exc
        return out


class AETitleRead(AETitleIn):
    id: int


class HospitalCreate(BaseModel):
    code: str = Field(min_length=2, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=200)
    ae_titles: list[AETitleIn] = Field(default_factory=list)


class HospitalRead(BaseModel):
    id: int
    code: str
    name: str
    active: bool
    ae_titles: list[AETitleRead]
