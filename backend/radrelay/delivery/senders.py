"""Delivery backends: one ``Sender`` subclass per endpoint kind, found by kind in a registry
(dispatch-style plugins).

A sender makes one attempt and says how it ended (``Outcome``): it never retries on its own and
never raises for anything the peer did; scheduling the next attempt is ``backoff.decide``'s job.
Every attempt sends the same bytes for the same report version (DICOM UIDs derived from the
report, the same FHIR identifiers and idempotency key), so a peer that stored an attempt whose
answer we lost stores the resend once.

- ``DicomSender``: C-STORE of the Encapsulated PDF (and the Enhanced SR when configured) to the
  hospital PACS over one association (PS3.4 Annex B, PS3.7 9.1.1, PS3.8 7.1).
- ``WebhookSender``: HTTPS POST of a FHIR R4 DiagnosticReport, signed with HMAC-SHA256.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import json
import logging
import socket
import ssl
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel
from pydicom.dataset import Dataset
from pydicom.uid import (
    EncapsulatedPDFStorage,
    EnhancedSRStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE, evt
from pynetdicom.pdu_primitives import A_ASSOCIATE

from radrelay.config import Settings
from radrelay.delivery import fhir
from radrelay.delivery.schemas import (
    DicomEndpointConfig,
    EndpointKind,
    Outcome,
    WebhookEndpointConfig,
)
from radrelay.reporting.document import ReportDocument

__all__ = [
    "IDEMPOTENCY_HEADER",
    "SENDERS",
    "TIMESTAMP_HEADER",
    "DicomSender",
    "Payload",
    "Sender",
    "SenderContext",
    "WebhookSender",
    "sender_for",
    "sign",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Payload:
    """One signed report version in every form a sender may need.

    ``report_version_id`` is our id of the version: the idempotency key of the delivery.
    ``encapsulated_pdf`` and ``structured_report`` are ``reporting.dicom``'s data sets of it."""

    report_version_id: int
    document: ReportDocument
    pdf: bytes
    encapsulated_pdf: Dataset
    structured_report: Dataset | None = None


@dataclass(frozen=True, slots=True)
class SenderContext:
    """What senders take from the platform's settings rather than from an endpoint."""

    calling_ae: str
    base_url: str  # our public URL: the root of our FHIR identifier systems

    @classmethod
    def from_settings(cls, settings: Settings) -> SenderContext:
        # The identifier systems must not change once reports are out: production sets
        # RADRELAY_PUBLIC_URL; the fallback only serves development.
        base = settings.public_url or f"http://{settings.host}:{settings.port}"
        return cls(calling_ae=settings.dicom_ae_title, base_url=base.rstrip("/"))


SENDERS: dict[str, type[Sender]] = {}


class Sender(ABC):
    """One delivery backend. Subclasses name their ``kind`` and ``config_model`` and are then
    found by ``sender_for``; ``send`` makes one attempt."""

    kind: ClassVar[EndpointKind]
    config_model: ClassVar[type[BaseModel]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind is not None:
            if kind in SENDERS:
                raise TypeError(f"two senders for kind {kind!r}: {SENDERS[kind]} and {cls}")
            SENDERS[kind] = cls

    def __init__(self, config: BaseModel, context: SenderContext):
        self.config = config
        self.context = context

    @abstractmethod
    async def send(self, payload: Payload) -> Outcome:
        """One attempt to deliver ``payload``. Never raises for the peer's doing."""


def sender_for(kind: str, config: Mapping[str, Any], context: SenderContext) -> Sender:
    """The sender of an endpoint, its stored ``config`` validated (pydantic ``ValidationError``
    for a bad one; ``ValueError`` for an unknown kind)."""
    try:
        cls = SENDERS[kind]
    except KeyError:
        raise ValueError(
            f"no sender for endpoint kind {kind!r}; known: {', '.join(sorted(SENDERS))}"
        ) from None
    return cls(cls.config_model.model_validate(config), context)


# --- DICOM C-STORE -------------------------------------------------------------------------

_TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]

# PS3.8 Table 9-21: A-ASSOCIATE-RJ result, source and reason/diag.
_REJECT_RESULT = {1: "rejected-permanent", 2: "rejected-transient"}
_REJECT_REASONS = {
    (1, 1): "service-user: no reason given",
    (1, 2): "service-user: application context name not supported",
    (1, 3): "service-user: calling AE title not recognised",
    (1, 7): "service-user: called AE title not recognised",
    (2, 1): "service-provider (ACSE): no reason given",
    (2, 2): "service-provider (ACSE): protocol version not supported",
    (3, 1): "service-provider (presentation): temporary congestion",
    (3, 2): "service-provider (presentation): local limit exceeded",
}

# PS3.4 Table B.2-1 (C-STORE) and PS3.7 Annex C (general statuses).
SUCCESS = 0x0000
WARNINGS = {
    0xB000: "coercion of data elements",
    0xB007: "data set does not match SOP class",
    0xB006: "elements discarded",
}
DUPLICATE_SOP_INSTANCE = 0x0111  # PS3.7 C.5.6: the peer already holds this very instance
_FAILURES = {
    0x0110: "processing failure",
    0x0117: "invalid SOP instance",
    0x0122: "SOP class not supported",
    0x0124: "not authorised",
    0x0211: "unrecognised operation",
    0x0212: "mistyped argument",
}
_SOP_CLASS_NAMES: dict[str, str] = {
    EncapsulatedPDFStorage: "Encapsulated PDF Storage",
    EnhancedSRStorage: "Enhanced SR Storage",
}


def store_status(status: int) -> tuple[str, str]:
    """A C-STORE status as (``sent`` | ``retry`` | ``failed``, its meaning).

    - 0x0000 success, the warnings 0xB000 / 0xB007 / 0xB006 (stored, perhaps altered) and 0x0111
      duplicate SOP instance (stored by an earlier attempt): sent;
    - 0xA7xx refused, out of resources: retry;
    - anything else: failed, among them 0xA9xx data set does not match SOP class, 0xCxxx cannot
      understand, 0x0122 SOP class not supported and 0x0124 not authorised."""
    if status == SUCCESS:
        return "sent", "success"
    if status in WARNINGS:
        return "sent", f"warning: {WARNINGS[status]}"
    if status == DUPLICATE_SOP_INSTANCE:
        return "sent", "duplicate SOP instance: the PACS already holds it"
    if status & 0xFF00 == 0xA700:
        return "retry", "refused: out of resources"
    if status & 0xFF00 == 0xA900:
        return "failed", "error: data set does not match SOP class"
    if status & 0xF000 == 0xC000:
        return "failed", "error: cannot understand"
    return "failed", _FAILURES.get(status, "failure")


class DicomSender(Sender):
    """C-STORE SCU to the hospital PACS.

    One association carries the Encapsulated PDF and, with ``send_sr``, the Enhanced SR; both
    presentation contexts offer Explicit and Implicit VR Little Endian, which every Storage SCP
    must accept for Implicit (PS3.5 10.1). pynetdicom is blocking, so the attempt runs in a
    worker thread. Outcomes:

    - no TCP connection (refused, unreachable, timed out, name not resolved): retry;
    - A-ASSOCIATE-RJ rejected-transient: retry; rejected-permanent: failed, with the PS3.8
      reason (a calling AE title the PACS does not know is the usual one);
    - an abort, or no answer within ``timeout``: retry;
    - the PACS accepts no presentation context for a class we must send: failed;
    - each C-STORE status as ``store_status`` classes it; the worst one wins (failed over retry
      over sent), and the association is released in any case."""

    kind = EndpointKind.dicom
    config_model = DicomEndpointConfig
    config: DicomEndpointConfig

    async def send(self, payload: Payload) -> Outcome:
        datasets = [payload.encapsulated_pdf]
        if self.config.send_sr:
            if payload.structured_report is None:
                raise ValueError("this endpoint sends the SR too, but the payload has none")
            datasets.append(payload.structured_report)
        return await asyncio.to_thread(self._send, datasets)

    @property
    def _peer(self) -> str:
        c = self.config
        return f"{c.ae_title}@{c.host}:{c.port}"

    def _send(self, datasets: list[Dataset]) -> Outcome:
        c = self.config
        calling = c.calling_ae or self.context.calling_ae
        try:
            # Resolved here, not by pynetdicom, so a name that does not resolve is told apart
            # from a host that does not answer.
            address = str(socket.getaddrinfo(c.host, c.port, type=socket.SOCK_STREAM)[0][4][0])
        except OSError as exc:
            return Outcome.retry(
                f"cannot resolve host name {c.host!r} ({exc}); check the endpoint's host",
                code="dns",
            )
        ae = AE(ae_title=calling)
        ae.connection_timeout = c.timeout
        ae.acse_timeout = c.timeout
        ae.dimse_timeout = c.timeout
        ae.network_timeout = c.timeout
        for sop_class in dict.fromkeys(str(ds.SOPClassUID) for ds in datasets):
            ae.add_requested_context(sop_class, _TRANSFER_SYNTAXES)

        connected = False

        def on_open(event: evt.Event) -> None:
            nonlocal connected
            connected = True

        started = time.monotonic()
        assoc = ae.associate(
            address, c.port, ae_title=c.ae_title, evt_handlers=[(evt.EVT_CONN_OPEN, on_open)]
        )
        if not assoc.is_established:
            return self._not_established(assoc, connected, time.monotonic() - started, calling)
        try:
            return self._store_all(assoc, datasets)
        finally:
            if assoc.is_established:
                assoc.release()

    def _not_established(
        self, assoc: Any, connected: bool, elapsed: float, calling: str
    ) -> Outcome:
        c = self.config
        if not connected:
            how = (
                f"timed out after {c.timeout:g} s"
                if elapsed >= c.timeout * 0.9
                else "refused or unreachable"
            )
            return Outcome.retry(
                f"cannot connect to the PACS at {c.host}:{c.port} ({how}): it is down, or a "
                "firewall is in the way",
                code="connection_refused" if "refused" in how else "connection_timeout",
            )
        if assoc.is_rejected:
            rsp = assoc.acceptor.primitive
            assert isinstance(rsp, A_ASSOCIATE)
            result, source, diagnostic = (
                int(rsp.result or 0),
                int(rsp.result_source or 0),
                int(rsp.diagnostic or 0),
            )
            why = _REJECT_REASONS.get((source, diagnostic), f"source {source}, reason {diagnostic}")
            verdict = _REJECT_RESULT.get(result, f"result {result}")
            said = f"{self._peer} rejected the association ({verdict}, {why})"
            if result == 2:
                return Outcome.retry(said, code="association_rejected_transient")
            hint = {
                (1, 3): f": register our calling AE title {calling!r} at the PACS, or set the "
                "endpoint's calling_ae to the title it knows",
                (1, 7): f": the PACS does not answer to {c.ae_title!r}; check the endpoint's "
                "ae_title",
            }.get((source, diagnostic), "")
            return Outcome.failed(said + hint, code="association_rejected")
        return Outcome.retry(
            f"{self._peer} aborted the association or did not answer within {c.timeout:g} s",
            code="association_aborted",
        )

    def _store_all(self, assoc: Any, datasets: list[Dataset]) -> Outcome:
        accepted = {str(cx.abstract_syntax) for cx in assoc.accepted_contexts}
        for ds in datasets:
            sop_class = str(ds.SOPClassUID)
            if sop_class not in accepted:
                name = _SOP_CLASS_NAMES.get(sop_class, sop_class)
                advice = (
                    "; turn off send_sr for this endpoint"
                    if sop_class == EnhancedSRStorage
                    else "; the PACS must be configured to store it"
                )
                return Outcome.failed(
                    f"{self._peer} accepts no {name} (its presentation context was "
                    f"rejected){advice}",
                    code="sop_class_not_accepted",
                )
        notes: list[str] = []
        retry: Outcome | None = None
        for ds in datasets:
            name = _SOP_CLASS_NAMES.get(str(ds.SOPClassUID), str(ds.SOPClassUID))
            rsp = assoc.send_c_store(ds)
            if "Status" not in rsp:
                # No response within the DIMSE timeout, or the association went down: pynetdicom
                # has aborted it, so nothing else can be sent on it.
                return Outcome.retry(
                    f"no C-STORE response from {self._peer} for the {name} within "
                    f"{self.config.timeout:g} s, or the association was aborted",
                    code="no_response",
                )
            status = int(rsp.Status)
            state, meaning = store_status(status)
            comment = str(rsp.get("ErrorComment", "") or "").strip()
            said = f"{name}: 0x{status:04X} {meaning}" + (f" ({comment})" if comment else "")
            if state == "failed":
                return Outcome.failed(
                    f"{self._peer} refused the {said}", code="dicom_status", status=status
                )
            if state == "retry" and retry is None:
                retry = Outcome.retry(
                    f"{self._peer} refused the {said}; it may accept it later",
                    code="dicom_status",
                    status=status,
                )
            if state == "sent" and status != SUCCESS:
                notes.append(said)
        if retry is not None:
            return retry
        return Outcome.sent("; ".join(notes), code="stored", status=SUCCESS)


# --- HTTPS webhook (FHIR) ------------------------------------------------------------------

TIMESTAMP_HEADER = "X-RadRelay-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
FHIR_JSON = "application/fhir+json; charset=utf-8"


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256, keyed with the shared
    secret, of the ASCII decimal Unix ``timestamp``, a ``.``, and the body bytes as sent.

    The timestamp is signed so a captured request cannot be replayed later: a receiver refuses
    a timestamp more than five minutes from its clock (as Stripe's webhooks do)."""
    mac = hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as seconds: delay-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


_HTTP_HINTS = {
    400: "the receiver refused the FHIR resource as malformed",
    401: "the receiver refused our signature: check that both sides have the same secret",
    403: "the receiver refused our signature or does not accept reports from us",
    404: "nothing at this URL: check the endpoint's url",
    405: "the URL does not accept POST: check the endpoint's url",
    410: "the receiver is gone: check the endpoint's url",
    413: "the report is larger than the receiver accepts",
    415: "the receiver does not accept application/fhir+json",
    422: "the receiver refused the FHIR resource",
}


class WebhookSender(Sender):
    """POST of the report as a FHIR R4 DiagnosticReport (``fhir.diagnostic_report``) as
    ``application/fhir+json``, with the headers:

    - ``X-RadRelay-Timestamp``: Unix seconds when this attempt was signed (each attempt anew);
    - the signature header (default ``X-RadRelay-Signature``): ``sign(secret, timestamp, body)``;
    - ``Idempotency-Key``: the report version id, the same on every attempt, so a receiver can
      drop a resend it already processed (it is also the body's version identifier, which the
      signature covers).

    Outcomes: 2xx sent; 408, 429 and 5xx retry (honouring Retry-After); a redirect failed (the
    signed report is not re-posted to wherever it points: the URL must be fixed); any other 4xx
    failed; connection errors and timeouts retry; a TLS certificate that does not verify failed."""

    kind = EndpointKind.webhook
    config_model = WebhookEndpointConfig
    config: WebhookEndpointConfig

    def __init__(
        self,
        config: BaseModel,
        context: SenderContext,
        *,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(config, context)
        self._clock = clock

    def body(self, payload: Payload) -> bytes:
        """The request body: the DiagnosticReport as compact UTF-8 JSON."""
        doc = payload.document
        system = self.config.patient_identifier_system or (
            f"{self.context.base_url}/fhir/sid/patient-id/"
            f"{doc.patient.issuer_of_patient_id or doc.hospital.code or 'unknown'}"
        )
        resource = fhir.diagnostic_report(
            doc,
            payload.pdf,
            base_url=self.context.base_url,
            report_version_id=payload.report_version_id,
            hospital_identifier_system=system,
        )
        return json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    async def send(self, payload: Payload) -> Outcome:
        c = self.config
        body = self.body(payload)
        now = self._clock()
        timestamp = int(now)
        headers = {
            "Content-Type": FHIR_JSON,
            "Accept": "application/fhir+json, application/json",
            TIMESTAMP_HEADER: str(timestamp),
            c.signature_header: sign(c.secret.get_secret_value().encode(), timestamp, body),
            IDEMPOTENCY_HEADER: str(payload.report_version_id),
            "User-Agent": "RadRelay-delivery",
        }
        try:
            async with httpx.AsyncClient(timeout=c.timeout, follow_redirects=False) as client:
                response = await client.post(c.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Outcome.retry(
                f"{c.url} did not answer within {c.timeout:g} s", code="http_timeout"
            )
        except httpx.TransportError as exc:
            if _certificate_error(exc):
                return Outcome.failed(
                    f"the TLS certificate of {c.url} does not verify ({exc}); the receiver "
                    "needs a certificate from a trusted authority",
                    code="tls_certificate",
                )
            return Outcome.retry(f"cannot reach {c.url}: {exc}", code="connection_error")
        return self._classify(response, now)

    def _classify(self, response: httpx.Response, now: float) -> Outcome:
        status = response.status_code
        url = self.config.url
        said = f"{url} answered HTTP {status} {response.reason_phrase}".rstrip()
        detail = response.text[:200].strip()
        if detail:
            said += f": {detail}"
        if 200 <= status < 300:
            return Outcome.sent(code="http_status", status=status)
        if status in (408, 429) or status >= 500:
            return Outcome.retry(
                said,
                code="http_status",
                status=status,
                retry_after=_retry_after(response.headers.get("Retry-After"), now),
            )
        if 300 <= status < 400:
            where = response.headers.get("Location", "?")
            return Outcome.failed(
                f"{said} (redirected to {where}): set the endpoint's url to the final address",
                code="http_redirect",
                status=status,
            )
        hint = _HTTP_HINTS.get(status, "the receiver refused the report")
        return Outcome.failed(f"{said} ({hint})", code="http_status", status=status)


def _certificate_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
