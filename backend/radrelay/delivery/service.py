"""Deliveries: each released report version to each active endpoint of its hospital.

- ``schedule`` runs in the unit of work that records a released version (final, amended, a STAT
  preliminary released early, each co-signed final): one ``pending`` row per active endpoint
  and a ``deliver`` job per row, sent after the commit. An amended report is a new version, so
  it is delivered again on rows of its own.
- An attempt (``start_attempt``, ``send``, ``record``) claims the row (``sending``), sends the
  stored signed PDF and its DICOM / FHIR forms with the endpoint's sender, and records the
  outcome as ``backoff.decide`` rules: ``sent``, ``pending`` with its next attempt, or
  ``failed`` with the reason. Nothing is dropped: ``failed`` rows stay until retried by hand.
- ``retry_due`` (the periodic ``delivery_retry``) sends the attempts that are due, and gives
  back rows a dead worker left ``sending`` (its claim not renewed for
  ``delivery_claim_seconds``); resending is safe, the senders are idempotent.
"""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pydicom
from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.audit.service import audit
from radrelay.auth.schemas import Principal, Role
from radrelay.cases.service import cases
from radrelay.config import Settings
from radrelay.delivery.backoff import decide
from radrelay.delivery.repository import DeliveryRow, repository
from radrelay.delivery.schemas import (
    CONFIG_MODELS,
    SECRET_KEYS,
    DeliveryRead,
    DeliveryStatus,
    EndpointIn,
    EndpointKind,
    EndpointRead,
    Outcome,
)
from radrelay.delivery.senders import Payload, SenderContext, sender_for
from radrelay.errors import Conflict, Forbidden, NotFound, Unprocessable
from radrelay.hospitals.service import hospitals
from radrelay.kit import events, jobs
from radrelay.kit.runtime import Runtime
from radrelay.models import Delivery, DeliveryEndpoint, ReportVersion
from radrelay.reporting import dicom
from radrelay.reporting import document as doc_model

log = logging.getLogger(__name__)

RETRY_BATCH = 200


def job_id(delivery_id: int, attempt: int) -> str:
    """One job per attempt: the id names the attempt, so the next one is not taken for a
    duplicate of the last while its result is kept."""
    return f"deliver:{delivery_id}:{attempt}"


def endpoint_read(e: DeliveryEndpoint) -> EndpointRead:
    config = dict(e.config or {})
    return EndpointRead(
        id=e.id,
        hospital_id=e.hospital_id,
        kind=EndpointKind(e.kind),
        name=e.name,
        active=e.active,
        config={k: v for k, v in config.items() if k not in SECRET_KEYS},
        has_secret=any(config.get(k) for k in SECRET_KEYS),
    )


def delivery_read(row: DeliveryRow) -> DeliveryRead:
    d, endpoint_name, version, report_status = row
    return DeliveryRead(
        id=d.id,
        case_id=d.case_id,
        hospital_id=d.hospital_id,
        endpoint_id=d.endpoint_id,
        endpoint_name=endpoint_name,
        kind=d.kind,
        report_version_id=d.report_version_id,
        version=version,
        report_status=report_status,
        status=DeliveryStatus(d.status),
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_error=d.last_error,
        last_code=d.last_code,
        sent_at=d.sent_at,
        created_at=d.created_at,
        updated_at=d.updated_at,
    )


def _validated_config(kind: EndpointKind, config: dict[str, Any]) -> dict[str, Any]:
    """The config as stored: checked by the kind's model, defaults filled in, secrets in clear
    (the JSON dump would mask them)."""
    try:
        model = CONFIG_MODELS[kind].model_validate(config)
    except ValidationError as exc:
        # Only where and what: pydantic's "input" could be the secret itself.
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]) or "config", "problem": e["msg"]}
            for e in exc.errors()
        ]
        raise Unprocessable(
            f"The {kind.value} endpoint's config is not valid: "
            + "; ".join(f"{p['field']}: {p['problem']}" for p in problems),
            detail=problems,
        ) from None
    stored = model.model_dump(mode="json")
    for name, value in model:
        if isinstance(value, SecretStr):
            stored[name] = value.get_secret_value()
    return stored


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt needs, read while claiming it so the sending holds no transaction."""

    delivery_id: int
    attempts: int
    case_id: int
    hospital_id: int
    kind: str
    config: dict[str, Any]
    version_id: int
    document: dict[str, Any]
    pdf_key: str
    source_key: str | None


class DeliveryService:
    # --- endpoints (admin) -------------------------------------------------------------------

    async def endpoints(self, session: AsyncSession, code: str) -> list[EndpointRead]:
        hospital = await hospitals.get_by_code(session, code)
        return [endpoint_read(e) for e in await repository.endpoints(session, hospital.id)]

    async def add_endpoint(
        self, session: AsyncSession, principal: Principal, code: str, body: EndpointIn
    ) -> EndpointRead:
        hospital = await hospitals.get_by_code(session, code)
        endpoint = DeliveryEndpoint(
            hospital_id=hospital.id,
            kind=body.kind.value,
            name=body.name,
            config=_validated_config(body.kind, body.config),
            active=body.active,
        )
        session.add(endpoint)
        await session.flush()
        self._audit_endpoint(session, principal, "delivery_endpoint.create", endpoint)
        return endpoint_read(endpoint)

    async def _endpoint(
        self, session: AsyncSession, code: str, endpoint_id: int
    ) -> DeliveryEndpoint:
        hospital = await hospitals.get_by_code(session, code)
        endpoint = await repository.endpoint(session, endpoint_id)
        if endpoint is None or endpoint.hospital_id != hospital.id:
            raise NotFound(f"Hospital {code!r} has no delivery endpoint {endpoint_id}.")
        return endpoint

    async def update_endpoint(
        self,
        session: AsyncSession,
        principal: Principal,
        code: str,
        endpoint_id: int,
        body: EndpointIn,
    ) -> EndpointRead:
        endpoint = await self._endpoint(session, code, endpoint_id)
        config = dict(body.config)
        if body.kind.value == endpoint.kind:
            for key in SECRET_KEYS:
                if key not in config and key in (endpoint.config or {}):
                    config[key] = endpoint.config[key]
        endpoint.kind = body.kind.value
        endpoint.name = body.name
        endpoint.config = _validated_config(body.kind, config)
        endpoint.active = body.active
        await session.flush()
        self._audit_endpoint(session, principal, "delivery_endpoint.update", endpoint)
        return endpoint_read(endpoint)

    async def remove_endpoint(
        self, session: AsyncSession, principal: Principal, code: str, endpoint_id: int
    ) -> None:
        """Delete it; one that has deliveries is deactivated instead, so their history (and
        the failed ones a coordinator may still retry) keeps its endpoint."""
        endpoint = await self._endpoint(session, code, endpoint_id)
        self._audit_endpoint(session, principal, "delivery_endpoint.remove", endpoint)
        if await repository.has_deliveries(session, endpoint.id):
            endpoint.active = False
        else:
            await session.delete(endpoint)
        await session.flush()

    def _audit_endpoint(
        self, session: AsyncSession, principal: Principal, action: str, e: DeliveryEndpoint
    ) -> None:
        audit.record(
            session,
            principal,
            action,
            object_type="delivery_endpoint",
            object_id=e.id,
            hospital_id=e.hospital_id,
            detail={"kind": e.kind, "name": e.name, "active": e.active},
        )

    # --- scheduling --------------------------------------------------------------------------

    async def schedule(
        self,
        session: AsyncSession,
        version_id: int,
        hospital_id: int,
        *,
        now: datetime,
        case_id: int | None = None,
    ) -> list[Delivery]:
        """A pending delivery of a released version to each active endpoint of its hospital,
        each with its first ``deliver`` job (sent after commit)."""
        endpoints = await repository.active_endpoints(session, hospital_id)
        if not endpoints:
            return []
        if case_id is None:
            case_id = await repository.case_of_version(session, version_id)
            if case_id is None:
                raise NotFound(f"No report version {version_id}.")
        rows = []
        for endpoint in endpoints:
            row = Delivery(
                report_version_id=version_id,
                endpoint_id=endpoint.id,
                hospital_id=hospital_id,
                case_id=case_id,
                kind=endpoint.kind,
                status=DeliveryStatus.pending.value,
                attempts=0,
                retried_at_attempt=0,
                next_attempt_at=now,
                last_error="",
                last_code="",
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            rows.append(row)
        await session.flush()
        for row in rows:
            jobs.enqueue(session, "deliver", job_id(row.id, 1), delivery_id=row.id)
            self._announce(session, row)
        return rows

    def _announce(self, session: AsyncSession, row: Delivery) -> None:
        events.publish(
            session,
            {
                "type": "delivery.updated",
                "case_id": row.case_id,
                "hospital_id": row.hospital_id,
                "delivery_id": row.id,
                "status": row.status,
            },
        )

    # --- one attempt -------------------------------------------------------------------------

    async def start_attempt(
        self, session: AsyncSession, delivery_id: int, now: datetime
    ) -> Attempt | None:
        """Claim a pending delivery (``sending``, one more attempt) and read what sending it
        needs; None when there is nothing to do (sent, failed, or another worker has it)."""
        if not await repository.claim(session, delivery_id, now):
            return None
        row = await repository.get(session, delivery_id)
        assert row is not None
        endpoint = await repository.endpoint(session, row.endpoint_id)
        version = await session.get(ReportVersion, row.report_version_id)
        assert endpoint is not None and version is not None
        self._announce(session, row)
        return Attempt(
            delivery_id=row.id,
            attempts=row.attempts,
            case_id=row.case_id,
            hospital_id=row.hospital_id,
            kind=endpoint.kind,
            config=dict(endpoint.config or {}),
            version_id=version.id,
            document=dict(version.document),
            pdf_key=version.storage_key,
            source_key=await repository.source_instance_key(session, row.case_id),
        )

    async def send(self, runtime: Runtime, attempt: Attempt) -> Outcome:
        """One attempt. Whatever goes wrong on our side (an endpoint config that no longer
        validates, a missing file) ends as an outcome too, so the row never stays ``sending``."""
        try:
            sender = sender_for(
                attempt.kind, attempt.config, SenderContext.from_settings(runtime.settings)
            )
        except (ValidationError, ValueError) as exc:
            return Outcome.failed(
                f"the endpoint's stored config is not valid ({exc}); correct the endpoint",
                code="endpoint_config",
            )
        try:
            payload = await asyncio.to_thread(self._payload, runtime, attempt)
        except Exception as exc:
            log.exception("delivery %s: the report could not be prepared", attempt.delivery_id)
            return Outcome.retry(
                f"the report could not be prepared for sending: {exc}", code="prepare"
            )
        try:
            return await sender.send(payload)
        except Exception as exc:  # senders never raise for the peer: this is our bug
            log.exception("delivery %s: the sender raised", attempt.delivery_id)
            return Outcome.retry(f"the sender failed unexpectedly: {exc}", code="internal")

    def _payload(self, runtime: Runtime, attempt: Attempt) -> Payload:
        with runtime.storage.open(attempt.pdf_key) as f:
            pdf = f.read()
        # Key images by reference: the SR's IMAGE items and FHIR's Media point at the archive.
        doc = doc_model.from_json(attempt.document, doc_model.key_image_refs(attempt.document))
        if attempt.source_key is None:
            raise LookupError("the case's study has no stored image to file the report with")
        with runtime.storage.open(attempt.source_key) as f:
            source = pydicom.dcmread(io.BytesIO(f.read()), stop_before_pixels=True)
        wants_sr = attempt.kind == EndpointKind.dicom and bool(attempt.config.get("send_sr"))
        return Payload(
            report_version_id=attempt.version_id,
            document=doc,
            pdf=pdf,
            encapsulated_pdf=dicom.encapsulated_pdf(pdf, doc, source),
            structured_report=dicom.structured_report(doc, source) if wants_sr else None,
        )

    async def record(
        self,
        session: AsyncSession,
        settings: Settings,
        attempt: Attempt,
        outcome: Outcome,
        now: datetime,
    ) -> None:
        row = await repository.get(session, attempt.delivery_id)
        # Another attempt took over (the retry loop gave a slow one up for dead): its outcome
        # is the one that counts.
        if row is None or row.status != "sending" or row.attempts != attempt.attempts:
            return
        decision = decide(
            outcome,
            attempt.attempts - row.retried_at_attempt,
            now,
            base=timedelta(seconds=settings.delivery_backoff_seconds),
        )
        row.status = decision.state.value
        row.next_attempt_at = decision.next_at
        row.last_code = outcome.code
        row.updated_at = now
        if decision.state.value == DeliveryStatus.sent:
            row.sent_at = now
            row.last_error = ""
        else:
            row.last_error = decision.reason
        await session.flush()
        self._announce(session, row)

    # --- the retry loop ----------------------------------------------------------------------

    async def keep_claim(self, session: AsyncSession, attempt: Attempt, now: datetime) -> bool:
        """The sending worker's sign of life (``tasks.deliver`` while it sends)."""
        return await repository.keep_claim(session, attempt.delivery_id, attempt.attempts, now)

    async def retry_due(self, session: AsyncSession, settings: Settings, now: datetime) -> int:
        """Enqueue the attempts that are due, after giving back the rows a dead worker left
        ``sending``: a live one renews its claim every third of ``delivery_claim_seconds``, so
        a claim older than that has nobody behind it. Safe to run twice: a job id names its
        attempt, and a claim is one conditional UPDATE."""
        stale = now - timedelta(seconds=settings.delivery_claim_seconds)
        await repository.release_stale(session, stale, now)
        due = await repository.due(session, now, RETRY_BATCH)
        for row in due:
            jobs.enqueue(session, "deliver", job_id(row.id, row.attempts + 1), delivery_id=row.id)
        return len(due)

    # --- status and the manual retry ---------------------------------------------------------

    async def for_case(
        self, session: AsyncSession, principal: Principal, case_id: int
    ) -> list[DeliveryRead]:
        if principal.role == Role.radiologist:
            raise Forbidden("Delivery status is for the hospital's technicians and coordinators.")
        await cases.visible_row(session, principal, case_id)
        return [delivery_read(r) for r in await repository.for_case(session, case_id)]

    async def by_status(
        self, session: AsyncSession, statuses: list[DeliveryStatus], limit: int, offset: int
    ) -> list[DeliveryRead]:
        rows = await repository.by_status(session, [s.value for s in statuses], limit, offset)
        return [delivery_read(r) for r in rows]

    async def retry(
        self, session: AsyncSession, principal: Principal, delivery_id: int, now: datetime
    ) -> DeliveryRead:
        """A failed delivery back to pending, its next attempt now. ``attempts`` is kept (its
        history); the backoff counts again from here (``retried_at_attempt``)."""
        row = await repository.get(session, delivery_id)
        if row is None:
            raise NotFound(f"No delivery {delivery_id}.")
        if row.status != DeliveryStatus.failed:
            raise Conflict(
                f"Delivery {delivery_id} is {row.status}: only a failed delivery is retried by "
                "hand (a pending one is retried on its own)."
            )
        row.status = DeliveryStatus.pending.value
        row.retried_at_attempt = row.attempts
        row.next_attempt_at = now
        row.updated_at = now
        await session.flush()
        jobs.enqueue(session, "deliver", job_id(row.id, row.attempts + 1), delivery_id=row.id)
        self._announce(session, row)
        audit.record(
            session,
            principal,
            "delivery.retry",
            object_type="delivery",
            object_id=row.id,
            hospital_id=row.hospital_id,
            detail={"case_id": row.case_id, "attempts": row.attempts},
        )
        found = await repository.row(session, row.id)
        assert found is not None
        return delivery_read(found)


deliveries = DeliveryService()
