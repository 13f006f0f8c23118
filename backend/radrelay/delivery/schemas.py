"""What a delivery endpoint is configured with, and what one attempt to deliver came to.

An endpoint (``models.hospital.DeliveryEndpoint``) stores its ``kind`` and a JSON ``config``;
each kind has a pydantic model here that validates that JSON with messages a hospital's IT
contact can act on. Unknown keys are refused, so a misspelt option fails loudly instead of being
ignored.

An attempt ends in an ``Outcome``: ``sent``, ``retry`` (temporary: the same attempt later may
work) or ``failed`` (permanent: someone has to change something first). The table of what maps
to which is in docs/delivery.md.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from radrelay.hospitals.schemas import AE_PATTERN

__all__ = [
    "CONFIG_MODELS",
    "DEFAULT_SIGNATURE_HEADER",
    "DeliveryRead",
    "DeliveryStatus",
    "DicomEndpointConfig",
    "EndpointIn",
    "EndpointKind",
    "EndpointRead",
    "Outcome",
    "OutcomeState",
    "WebhookEndpointConfig",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)

DEFAULT_SIGNATURE_HEADER = "X-RadRelay-Signature"
# Shorter than this, a shared secret can be guessed offline from one signed request.
MIN_SECRET_LENGTH = 32

AETitle = Annotated[
    str,
    Field(
        pattern=AE_PATTERN,
        description="1-16 printable ASCII characters, no backslash, no leading/trailing space "
        "(PS3.5 6.2, VR AE).",
    ),
]


class EndpointKind(StrEnum):
    dicom = "dicom"
    webhook = "webhook"


class DicomEndpointConfig(BaseModel):
    """The hospital PACS as a Storage SCP: where the Encapsulated PDF (and the SR) go by
    C-STORE (PS3.4 Annex B)."""

    model_config = _STRICT

    ae_title: AETitle = Field(description="The called AE title: the PACS's own.")
    host: str = Field(min_length=1, max_length=253, description="Host name or IP address.")
    port: int = Field(ge=1, le=65535)
    calling_ae: AETitle | None = Field(
        default=None,
        description="Our AE title as the PACS knows it; default the platform's "
        "(RADRELAY_DICOM_AE_TITLE).",
    )
    timeout: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Seconds allowed for the TCP connection, the association negotiation and "
        "each C-STORE response.",
    )
    send_sr: bool = Field(
        default=False,
        description="Also send the report as an Enhanced SR (TID 2000). Off by default: many "
        "PACS cannot display SR, and the Encapsulated PDF is what they all show.",
    )

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip()
        if any(c.isspace() for c in value) or "/" in value:
            raise ValueError(f"{value!r} is not a host name or IP address")
        return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebhookEndpointConfig(BaseModel):
    """An HTTPS URL that receives each signed report version as a FHIR R4 DiagnosticReport,
    signed with HMAC-SHA256 over a shared secret (the scheme: ``senders.WebhookSender``)."""

    model_config = _STRICT

    url: str = Field(
        max_length=2000,
        description="https://...; plain http only to a loopback address (tests, development).",
    )
    secret: SecretStr = Field(
        description=f"The shared HMAC key, at least {MIN_SECRET_LENGTH} characters."
    )
    signature_header: str = Field(default=DEFAULT_SIGNATURE_HEADER, pattern=r"^[A-Za-z0-9-]{1,64}$")
    timeout: float = Field(default=30.0, gt=0, le=300, description="Seconds per request.")
    patient_identifier_system: str | None = Field(
        default=None,
        max_length=500,
        description="The FHIR identifier system (a URI) of the hospital's patient IDs; default "
        "one derived from the platform's URL and the hospital's issuer of patient IDs.",
    )

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"the secret must be at least {MIN_SECRET_LENGTH} characters: a shorter one can "
                "be guessed from a single signed request (make one with `openssl rand -hex 32`)"
            )
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"{value!r} is not an absolute http(s) URL")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError(
                "the URL must use https: reports carry patient data and must not cross the "
                "network in clear text (plain http is allowed only to a loopback address)"
            )
        if parts.username or parts.password:
            raise ValueError("put no credentials in the URL: requests are signed with the secret")
        return value.strip()


class OutcomeState(StrEnum):
    sent = "sent"
    retry = "retry"  # temporary: the same attempt may work later
    failed = "failed"  # permanent: something must change first (configuration, the peer)


class Outcome(BaseModel):
    """How one attempt ended.

    ``reason`` is written for a coordinator or the hospital's IT contact: what happened and,
    for ``failed``, what to change. ``code`` is a stable machine key (``connection_refused``,
    ``association_rejected``, ``dicom_status``, ``http_status`` ...) and ``status`` the DICOM or
    HTTP status code when there was one. ``retry_after`` is the peer's own wish (HTTP
    Retry-After), in seconds."""

    model_config = ConfigDict(frozen=True)

    state: OutcomeState
    reason: str = ""
    code: str = ""
    status: int | None = None
    retry_after: float | None = None

    @classmethod
    def sent(cls, reason: str = "", *, code: str = "ok", status: int | None = None) -> Outcome:
        return cls(state=OutcomeState.sent, reason=reason, code=code, status=status)

    @classmethod
    def retry(
        cls,
        reason: str,
        *,
        code: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> Outcome:
        return cls(
            state=OutcomeState.retry,
            reason=reason,
            code=code,
            status=status,
            retry_after=retry_after,
        )

    @classmethod
    def failed(cls, reason: str, *, code: str, status: int | None = None) -> Outcome:
        return cls(state=OutcomeState.failed, reason=reason, code=code, status=status)


# --- the API: endpoints and deliveries -------------------------------------------------------

CONFIG_MODELS: dict[EndpointKind, type[BaseModel]] = {
    EndpointKind.dicom: DicomEndpointConfig,
    EndpointKind.webhook: WebhookEndpointConfig,
}
# Config keys never sent back: a stolen admin session must not yield the hospital's keys.
SECRET_KEYS = ("secret",)


class EndpointIn(BaseModel):
    """An endpoint as an admin writes it. ``config`` is checked against the kind's model
    (``DicomEndpointConfig``, ``WebhookEndpointConfig``). On update, a webhook config without
    ``secret`` keeps the stored one, so changing a URL does not mean typing the key again."""

    model_config = ConfigDict(extra="forbid")

    kind: EndpointKind
    name: str = Field(min_length=1, max_length=100)
    config: dict[str, Any]
    active: bool = True


class EndpointRead(BaseModel):
    id: int
    hospital_id: int
    kind: EndpointKind
    name: str
    active: bool
    config: dict[str, Any] = Field(description="The stored config without its secret.")
    has_secret: bool


class DeliveryStatus(StrEnum):
    pending = "pending"  # waiting for its next attempt (next_attempt_at)
    sending = "sending"  # an attempt is under way
    sent = "sent"
    failed = "failed"  # kept; retried by hand once the cause is fixed


class DeliveryRead(BaseModel):
    id: int
    case_id: int
    hospital_id: int
    endpoint_id: int
    endpoint_name: str
    kind: str
    report_version_id: int
    version: int
    report_status: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    last_code: str
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime
