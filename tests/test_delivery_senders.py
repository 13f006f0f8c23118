"""Delivery senders against real peers on loopback: a pynetdicom Storage SCP and dcmtk's
``storescp`` (the system's, /usr/bin) for C-STORE, and an ``http.server`` receiver that checks
the HMAC signature for the webhook. No mocks: each outcome is what a real peer made happen.

The report is ``reporting.sample``'s, filed in a synthetic CT study (``helpers.study``); its DICOM
forms come from ``reporting.dicom``, its PDF is a small one drawn with reportlab (what matters is
that the bytes arrive unchanged).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import json
import random
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydantic import ValidationError
from pydicom.dataset import Dataset
from pydicom.uid import EncapsulatedPDFStorage, EnhancedSRStorage, ExplicitVRLittleEndian
from pynetdicom import AE, evt
from reportlab.pdfgen import canvas

from helpers import study
from radrelay import synth
from radrelay.delivery.backoff import (
    DEFAULT_MAX_ATTEMPTS,
    DeliveryState,
    decide,
    next_attempt,
)
from radrelay.delivery.fhir import diagnostic_report
from radrelay.delivery.schemas import (
    DicomEndpointConfig,
    Outcome,
    OutcomeState,
    WebhookEndpointConfig,
)
from radrelay.delivery.senders import (
    IDEMPOTENCY_HEADER,
    SENDERS,
    TIMESTAMP_HEADER,
    DicomSender,
    Payload,
    SenderContext,
    WebhookSender,
    sender_for,
    store_status,
)
from radrelay.reporting.dicom import encapsulated_pdf, report_uids, structured_report
from radrelay.reporting.document import ReportDocument, ReportStatus
from radrelay.reporting.sample import sample_document

STORESCP = "/usr/bin/storescp"
PACS_AE = "HOSPACS"
OUR_AE = "RADRELAY"
SECRET = "s3cret-shared-with-the-hospital-0123456789"
CONTEXT = SenderContext(calling_ae=OUR_AE, base_url="https://radrelay.example.org")
REPLAY_WINDOW = 300
# The sample report's patient, so that the report may be filed in the synthetic study.
ZHANG_WEI = synth.SynthPatient("Zhang^Wei=张^伟", "QSX-000123", "19680412", "M")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def a_pdf(text: str = "RadRelay report") -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, text)
    page.save()
    return buffer.getvalue()


def payload(
    *,
    status: ReportStatus = ReportStatus.final,
    version: int = 1,
    version_id: int = 501,
) -> Payload:
    """The sample report (no key images) in a fresh synthetic study, with its DICOM forms."""
    source = pydicom.dcmread(
        io.BytesIO(_part10(study("CT", slices=1, size=16, patient=ZHANG_WEI)[0]))
    )
    doc = sample_document(key_images=0, status=status, version=version)
    doc = replace(
        doc,
        exam=replace(
            doc.exam,
            study_instance_uid=source.StudyInstanceUID,
            study_date=source.StudyDate,
            study_time=source.StudyTime,
            accession_number=source.AccessionNumber,
        ),
        supersedes_version=version - 1 if status == ReportStatus.amended else None,
        amendment_reason="结节大小更正 Size corrected" if status == ReportStatus.amended else "",
    )
    pdf = a_pdf(f"report v{version}")
    return Payload(
        report_version_id=version_id,
        document=doc,
        pdf=pdf,
        encapsulated_pdf=encapsulated_pdf(pdf, doc, source),
        structured_report=structured_report(doc, source),
    )


def _part10(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing listens on port {port} after {timeout}s")
        time.sleep(0.05)


# --- DICOM peers --------------------------------------------------------------------------


@dataclass
class Pacs:
    """A pynetdicom Storage SCP on loopback that keeps what it stored."""

    port: int
    received: list[Dataset] = field(default_factory=list)
    callers: list[str] = field(default_factory=list)


@contextlib.contextmanager
def pacs(
    port: int | None = None,
    *,
    status: int = 0x0000,
    calling_aes: list[str] | None = None,
    sop_classes: tuple[str, ...] = (EncapsulatedPDFStorage, EnhancedSRStorage),
    reject: tuple[int, int, int] | None = None,
) -> Iterator[Pacs]:
    """``status``: what every C-STORE answers; ``calling_aes``: the only calling AE titles it
    accepts (pynetdicom rejects others: rejected-permanent, service-user, calling AE title not
    recognised); ``reject``: (result, source, reason) to reject every association with."""
    peer = Pacs(port or free_port())
    ae = AE(ae_title=PACS_AE)
    for sop_class in sop_classes:
        ae.add_supported_context(sop_class, [ExplicitVRLittleEndian, "1.2.840.10008.1.2"])
    ae.require_called_aet = True
    if calling_aes is not None:
        ae.require_calling_aet = calling_aes

    def on_store(event: evt.Event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        if status & 0xF000 in (0x0000, 0xB000):
            peer.received.append(ds)
        return status

    def on_requested(event: evt.Event) -> None:
        peer.callers.append(event.assoc.requestor.primitive.calling_ae_title.strip())
        if reject is not None:
            event.assoc.acse.send_reject(*reject)
            event.assoc.kill()

    server = ae.start_server(
        ("127.0.0.1", peer.port),
        block=False,
        evt_handlers=[(evt.EVT_C_STORE, on_store), (evt.EVT_REQUESTED, on_requested)],
    )
    try:
        yield peer
    finally:
        server.shutdown()


def dicom_sender(port: int, **config: Any) -> DicomSender:
    sender = sender_for(
        "dicom", {"ae_title": PACS_AE, "host": "127.0.0.1", "port": port, **config}, CONTEXT
    )
    assert isinstance(sender, DicomSender)
    return sender


class TestDicomSender:
    async def test_pdf_and_sr_arrive_byte_for_byte(self) -> None:
        p = payload()
        with pacs() as peer:
            outcome = await dicom_sender(peer.port, send_sr=True).send(p)
        assert outcome.state is OutcomeState.sent, outcome
        assert peer.callers == [OUR_AE]
        pdf, sr = peer.received
        assert pdf.SOPClassUID == EncapsulatedPDFStorage
        assert pdf.EncapsulatedDocument[: pdf.EncapsulatedDocumentLength] == p.pdf
        assert pdf.SOPInstanceUID == report_uids(p.document).pdf_instance
        assert sr.SOPClassUID == EnhancedSRStorage
        assert sr.SOPInstanceUID == report_uids(p.document).sr_instance
        assert pdf.StudyInstanceUID == sr.StudyInstanceUID == p.document.exam.study_instance_uid

    async def test_sr_is_sent_only_when_configured(self) -> None:
        with pacs() as peer:
            outcome = await dicom_sender(peer.port).send(payload())
        assert outcome.state is OutcomeState.sent
        assert [ds.SOPClassUID for ds in peer.received] == [EncapsulatedPDFStorage]

    async def test_calling_ae_of_the_endpoint_wins(self) -> None:
        with pacs(calling_aes=["QSX-RIS"]) as peer:
            outcome = await dicom_sender(peer.port, calling_ae="QSX-RIS").send(payload())
        assert outcome.state is OutcomeState.sent
        assert peer.callers == ["QSX-RIS"]

    async def test_peer_down_then_back(self) -> None:
        port = free_port()
        sender = dicom_sender(port, timeout=5)
        p = payload()
        down = await sender.send(p)
        assert down.state is OutcomeState.retry
        assert down.code == "connection_refused"
        assert f"127.0.0.1:{port}" in down.reason
        with pacs(port) as peer:
            up = await sender.send(p)
        assert up.state is OutcomeState.sent, up
        assert peer.received[0].EncapsulatedDocument[: len(p.pdf)] == p.pdf

    async def test_unknown_calling_ae_is_a_permanent_failure(self) -> None:
        with pacs(calling_aes=["SOMEONE-ELSE"]) as peer:
            outcome = await dicom_sender(peer.port).send(payload())
        assert outcome.state is OutcomeState.failed
        assert outcome.code == "association_rejected"
        assert "rejected-permanent" in outcome.reason
        assert "calling AE title not recognised" in outcome.reason
        assert f"register our calling AE title {OUR_AE!r}" in outcome.reason
        assert peer.received == []

    async def test_wrong_called_ae_is_a_permanent_failure(self) -> None:
        with pacs() as peer:
            outcome = await dicom_sender(peer.port, ae_title="NOT-THE-PACS").send(payload())
        assert outcome.state is OutcomeState.failed
        assert "called AE title not recognised" in outcome.reason
        assert "check the endpoint's ae_title" in outcome.reason

    async def test_transient_rejection_is_retried(self) -> None:
        # Rejected-transient, service-provider (presentation), temporary congestion.
        with pacs(reject=(0x02, 0x03, 0x01)) as peer:
            outcome = await dicom_sender(peer.port).send(payload())
        assert outcome.state is OutcomeState.retry
        assert outcome.code == "association_rejected_transient"
        assert "temporary congestion" in outcome.reason

    async def test_out_of_resources_is_retried(self) -> None:
        with pacs(status=0xA700) as peer:
            outcome = await dicom_sender(peer.port, send_sr=True).send(payload())
        assert outcome.state is OutcomeState.retry
        assert outcome.status == 0xA700
        assert "0xA700 refused: out of resources" in outcome.reason

    async def test_cannot_understand_is_a_permanent_failure(self) -> None:
        with pacs(status=0xC000) as peer:
            outcome = await dicom_sender(peer.port).send(payload())
        assert outcome.state is OutcomeState.failed
        assert outcome.status == 0xC000

    async def test_warning_counts_as_sent(self) -> None:
        with pacs(status=0xB000) as peer:
            outcome = await dicom_sender(peer.port).send(payload())
        assert outcome.state is OutcomeState.sent
        assert "0xB000 warning: coercion of data elements" in outcome.reason

    async def test_pacs_without_sr_storage_fails_before_sending(self) -> None:
        with pacs(sop_classes=(EncapsulatedPDFStorage,)) as peer:
            outcome = await dicom_sender(peer.port, send_sr=True).send(payload())
        assert outcome.state is OutcomeState.failed
        assert outcome.code == "sop_class_not_accepted"
        assert "turn off send_sr" in outcome.reason
        assert peer.received == []

    async def test_into_dcmtk_storescp(self, storescp: tuple[int, Path]) -> None:
        port, out = storescp
        p = payload()
        outcome = await dicom_sender(port, send_sr=True).send(p)
        assert outcome.state is OutcomeState.sent, outcome
        stored = {ds.SOPClassUID: ds for ds in map(pydicom.dcmread, out.iterdir())}
        pdf = stored[EncapsulatedPDFStorage]
        assert pdf.EncapsulatedDocument[: pdf.EncapsulatedDocumentLength] == p.pdf
        assert EnhancedSRStorage in stored


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """dcmtk's Storage SCP as the hospital PACS; its port and the folder it stores into (files
    are written before the C-STORE response, so they are there when ``send`` returns)."""
    port = free_port()
    out = tmp_path / "received"
    out.mkdir()
    scp = subprocess.Popen(
        [STORESCP, "-aet", PACS_AE, "-od", str(out), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port)
        yield port, out
    finally:
        scp.terminate()
        scp.wait(timeout=10)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (0x0000, "sent"),
        (0xB000, "sent"),
        (0xB006, "sent"),
        (0xB007, "sent"),
        (0x0111, "sent"),
        (0xA700, "retry"),
        (0xA7FF, "retry"),
        (0xA900, "failed"),
        (0xC000, "failed"),
        (0xC123, "failed"),
        (0x0122, "failed"),
        (0x0110, "failed"),
    ],
)
def test_store_status(status: int, state: str) -> None:
    assert store_status(status)[0] == state


# --- the webhook receiver -----------------------------------------------------------------


@dataclass
class Receiver:
    """A hospital's webhook: verifies the signature and the timestamp as docs/delivery.md
    tells receivers to, answers from ``answers`` (then 200), keeps what it accepted."""

    port: int
    secret: bytes
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    accepted: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir/DiagnosticReport"

    def verify(self, headers: dict[str, str], body: bytes) -> str | None:
        """Why the request is refused, or None."""
        timestamp = headers.get(TIMESTAMP_HEADER.lower(), "")
        signature = headers.get("x-radrelay-signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > REPLAY_WINDOW:
            return "stale or missing timestamp"
        expected = hmac.new(self.secret, timestamp.encode() + b"." + body, hashlib.sha256)
        if not hmac.compare_digest(signature, "sha256=" + expected.hexdigest()):
            return "bad signature"
        return None


@contextlib.contextmanager
def receiver(secret: str = SECRET) -> Iterator[Receiver]:
    state = Receiver(free_port(), secret.encode())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if (why := state.verify(headers, body)) is not None:
                state.refused.append(why)
                self._answer(401, {}, why)
                return
            status, extra = state.answers.pop(0) if state.answers else (200, {})
            if status == 200:
                state.accepted.append((headers, body))
            self._answer(status, extra, "ok" if status == 200 else "busy")

        def _answer(self, status: int, headers: dict[str, str], text: str) -> None:
            data = text.encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def webhook_sender(url: str, secret: str = SECRET, **kw: Any) -> WebhookSender:
    config = WebhookEndpointConfig(url=url, secret=secret)  # type: ignore[arg-type]
    return WebhookSender(config, CONTEXT, **kw)


class TestWebhookSender:
    async def test_signed_report_is_accepted(self) -> None:
        p = payload()
        with receiver() as hook:
            outcome = await webhook_sender(hook.url).send(p)
        assert outcome.state is OutcomeState.sent, outcome
        assert outcome.status == 200
        ((headers, body),) = hook.accepted
        assert headers["content-type"] == "application/fhir+json; charset=utf-8"
        assert headers[IDEMPOTENCY_HEADER.lower()] == "501"
        resource = json.loads(body)
        check_diagnostic_report(resource)
        assert resource["status"] == "final"
        assert base64.b64decode(resource["presentedForm"][0]["data"]) == p.pdf

    async def test_wrong_secret_is_refused_for_good(self) -> None:
        with receiver() as hook:
            outcome = await webhook_sender(hook.url, secret="x" * 40).send(payload())
        assert outcome.state is OutcomeState.failed
        assert outcome.status == 401
        assert "same secret" in outcome.reason
        assert hook.refused == ["bad signature"] and hook.accepted == []

    async def test_replayed_timestamp_is_refused(self) -> None:
        # A request signed ten minutes ago, as a captured and replayed one would be.
        with receiver() as hook:
            sender = webhook_sender(hook.url, clock=lambda: time.time() - 600)
            outcome = await sender.send(payload())
        assert outcome.state is OutcomeState.failed
        assert hook.refused == ["stale or missing timestamp"]

    async def test_busy_then_accepted(self) -> None:
        p = payload()
        with receiver() as hook:
            hook.answers = [(503, {"Retry-After": "7"}), (429, {})]
            sender = webhook_sender(hook.url)
            first = await sender.send(p)
            second = await sender.send(p)
            third = await sender.send(p)
        assert first.state is OutcomeState.retry and first.status == 503
        assert first.retry_after == 7
        assert second.state is OutcomeState.retry and second.status == 429
        assert third.state is OutcomeState.sent
        assert len(hook.accepted) == 1

    async def test_nobody_listening_is_retried(self) -> None:
        outcome = await webhook_sender(f"http://127.0.0.1:{free_port()}/hook").send(payload())
        assert outcome.state is OutcomeState.retry
        assert outcome.code == "connection_error"

    async def test_amended_version_is_delivered_again(self) -> None:
        final = payload(version_id=601)
        amended_doc = replace(
            final.document,
            version=2,
            status=ReportStatus.amended,
            supersedes_version=1,
            amendment_reason="Size corrected",
        )
        amended = replace(final, report_version_id=602, document=amended_doc, pdf=a_pdf("v2"))
        with receiver() as hook:
            sender = webhook_sender(hook.url)
            assert (await sender.send(final)).state is OutcomeState.sent
            assert (await sender.send(amended)).state is OutcomeState.sent
        first, second = (json.loads(body) for _, body in hook.accepted)
        assert (first["status"], second["status"]) == ("final", "amended")
        # The same report, a new version: what a receiver needs to replace the earlier one.
        assert first["identifier"][0] == second["identifier"][0]
        assert first["identifier"][1]["value"] == "601"
        assert second["identifier"][1]["value"] == "602"
        assert [h[IDEMPOTENCY_HEADER.lower()] for h, _ in hook.accepted] == ["601", "602"]
        assert base64.b64decode(second["presentedForm"][0]["data"]) == amended.pdf

    async def test_resend_carries_the_same_key_and_body(self) -> None:
        p = payload()
        with receiver() as hook:
            sender = webhook_sender(hook.url)
            await sender.send(p)
            await sender.send(p)
        (h1, b1), (h2, b2) = hook.accepted
        assert h1[IDEMPOTENCY_HEADER.lower()] == h2[IDEMPOTENCY_HEADER.lower()]
        assert b1 == b2


# --- FHIR ---------------------------------------------------------------------------------

DIAGNOSTIC_REPORT_STATUSES = {
    "registered",
    "partial",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "appended",
    "cancelled",
    "entered-in-error",
    "unknown",
}
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
DATE_TIME = re.compile(
    r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?$"
)


def check_diagnostic_report(r: dict[str, Any]) -> None:
    """A light check of FHIR R4 DiagnosticReport's shape: required elements (status, code),
    value sets that are required bindings, references that resolve, Attachment rules."""
    assert r["resourceType"] == "DiagnosticReport"
    assert r["status"] in DIAGNOSTIC_REPORT_STATUSES
    assert r["code"]["coding"], "code is 1..1 and should be coded"
    for identifier in r["identifier"]:
        assert identifier["system"] and identifier["value"]
    contained = {c["id"]: c for c in r.get("contained", [])}
    if (ref := r["subject"].get("reference", "")).startswith("#"):
        assert contained[ref[1:]]["resourceType"] == "Patient"  # dom-3: contained is referenced
    assert INSTANT.match(r["issued"]), r["issued"]
    if "effectiveDateTime" in r:
        assert DATE_TIME.match(r["effectiveDateTime"]), r["effectiveDateTime"]
    for attachment in r["presentedForm"]:
        assert attachment["contentType"]  # att-1: data needs a contentType
        data = base64.b64decode(attachment["data"], validate=True)
        assert attachment["size"] == len(data)
        assert base64.b64decode(attachment["hash"]) == hashlib.sha1(data).digest()
        assert DATE_TIME.match(attachment["creation"])
    for reference in r.get("performer", []) + r.get("resultsInterpreter", []):
        assert reference.get("reference") or reference.get("display")
    for media in r.get("media", []):
        linked = contained[media["link"]["reference"][1:]]  # dom-3 again
        assert linked["resourceType"] == "Media" and linked["status"] == "completed"
        assert linked["content"]["contentType"] and linked["content"]["url"]


class TestDiagnosticReport:
    def resource(self, doc: ReportDocument | None = None, pdf: bytes = b"%PDF-1.4 x") -> Any:
        return diagnostic_report(
            doc or sample_document(key_images=0),
            pdf,
            base_url="https://radrelay.example.org/",
            report_version_id=77,
            hospital_identifier_system="urn:oid:1.2.156.999.1",
        )

    def test_mapping(self) -> None:
        doc = sample_document(key_images=0)
        r = self.resource(doc)
        check_diagnostic_report(r)
        assert r["identifier"] == [
            {
                "use": "official",
                "system": "https://radrelay.example.org/fhir/sid/report",
                "value": "1024",
            },
            {
                "use": "secondary",
                "system": "https://radrelay.example.org/fhir/sid/report-version",
                "value": "77",
            },
        ]
        assert r["category"][0]["coding"][0] == {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
            "code": "RAD",
            "display": "Radiology",
        }
        assert r["code"]["coding"][0]["system"] == "http://loinc.org"
        assert r["code"]["coding"][0]["code"] == "18748-4"
        assert r["effectiveDateTime"] == "2025-03-03T14:05:12+08:00"
        assert r["issued"] == "2025-03-03T15:05:00+08:00"  # the co-signature, Beijing time
        assert r["imagingStudy"][0]["identifier"] == {
            "system": "urn:dicom:uid",
            "value": f"urn:oid:{doc.exam.study_instance_uid}",
        }
        assert r["basedOn"][0]["identifier"]["value"] == "A20250303-0042"
        assert r["conclusion"].startswith("1. 右肺上叶实性小结节")
        assert [p["display"] for p in r["resultsInterpreter"]] == [
            "李娜 Li Na",
            "王建国 Wang Jianguo",
        ]
        assert r["performer"][0] == {"type": "Organization", "display": "云影远程影像诊断中心"}
        patient = r["contained"][0]
        assert patient["identifier"][0]["system"] == "urn:oid:1.2.156.999.1"
        assert patient["identifier"][0]["value"] == "QSX-000123"
        assert [n["text"] for n in patient["name"]] == ["Wei Zhang", "张伟"]
        assert patient["gender"] == "male" and patient["birthDate"] == "1968-04-12"
        form = r["presentedForm"][0]
        assert form["language"] == "zh-CN"
        assert form["hash"] == base64.b64encode(hashlib.sha1(b"%PDF-1.4 x").digest()).decode()

    @pytest.mark.parametrize("status", list(ReportStatus))
    def test_status(self, status: ReportStatus) -> None:
        r = self.resource(sample_document(key_images=0, status=status))
        assert r["status"] == status.value

    def test_key_images_are_media_in_the_report(self) -> None:
        doc = sample_document(key_images=2)
        r = self.resource(doc)
        check_diagnostic_report(r)
        assert [m["comment"] for m in r["media"]] == [k.caption for k in doc.key_images]
        [first, _] = [c for c in r["contained"] if c["resourceType"] == "Media"]
        image = doc.key_images[0]
        assert first["identifier"] == [
            {"system": "urn:dicom:uid", "value": f"urn:oid:{image.sop_instance_uid}"}
        ]
        assert first["partOf"] == r["imagingStudy"]
        assert first["content"]["url"] == (
            f"https://radrelay.example.org/dicomweb/studies/{image.study_instance_uid}"
            f"/series/{image.series_instance_uid}/instances/{image.sop_instance_uid}"
            f"/frames/{image.frame}/rendered"
        )
        assert "media" not in self.resource(sample_document(key_images=0))

    def test_json_round_trip(self) -> None:
        r = self.resource()
        assert json.loads(json.dumps(r, ensure_ascii=False)) == r


# --- configs, the registry and backoff ----------------------------------------------------


class TestConfigs:
    def test_registry(self) -> None:
        assert SENDERS == {"dicom": DicomSender, "webhook": WebhookSender}
        with pytest.raises(ValueError, match="no sender for endpoint kind 'hl7'"):
            sender_for("hl7", {}, CONTEXT)

    @pytest.mark.parametrize(
        ("config", "message"),
        [
            ({"ae_title": "HOSPACS", "host": "pacs", "port": 0}, "greater than or equal to 1"),
            ({"ae_title": "A" * 17, "host": "pacs", "port": 104}, "should match pattern"),
            ({"ae_title": "PACS", "host": "a b", "port": 104}, "not a host name"),
            ({"ae_title": "PACS", "host": "pacs", "port": 104, "sr": 1}, "Extra inputs"),
        ],
    )
    def test_dicom_config_refused(self, config: dict[str, Any], message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            DicomEndpointConfig.model_validate(config)

    @pytest.mark.parametrize(
        ("url", "secret", "message"),
        [
            ("http://ris.hospital.cn/hook", SECRET, "must use https"),
            ("ftp://ris.hospital.cn/hook", SECRET, "not an absolute http"),
            ("https://user:pw@ris.hospital.cn/", SECRET, "no credentials"),
            ("https://ris.hospital.cn/hook", "short", "at least 32 characters"),
        ],
    )
    def test_webhook_config_refused(self, url: str, secret: str, message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            WebhookEndpointConfig.model_validate({"url": url, "secret": secret})

    def test_webhook_config_accepted(self) -> None:
        for url in ("https://ris.hospital.cn/hook", "http://127.0.0.1:8080/", "http://[::1]/"):
            config = WebhookEndpointConfig.model_validate({"url": url, "secret": SECRET})
            assert config.signature_header == "X-RadRelay-Signature"
            assert SECRET not in repr(config)


NOW = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)


def no_jitter() -> float:
    return 0.0


class TestBackoff:
    @pytest.mark.parametrize(
        ("attempt", "seconds"),
        [(1, 30), (2, 60), (3, 120), (4, 240), (7, 1920), (8, 3600), (9, 3600), (500, 3600)],
    )
    def test_exponential_with_a_cap(self, attempt: int, seconds: int) -> None:
        assert next_attempt(attempt, NOW, jitter=no_jitter) == NOW + timedelta(seconds=seconds)

    def test_jitter_only_shortens(self) -> None:
        assert next_attempt(3, NOW, jitter=lambda: 0.5) == NOW + timedelta(seconds=108)
        rng = random.Random(20260303)
        delays = [
            (next_attempt(9, NOW, jitter=rng.random) - NOW).total_seconds() for _ in range(50)
        ]
        assert all(2880 < d <= 3600 for d in delays)
        again = random.Random(20260303)
        assert delays[0] == (next_attempt(9, NOW, jitter=again.random) - NOW).total_seconds()

    def test_custom_schedule(self) -> None:
        at = next_attempt(
            3,
            NOW,
            base=timedelta(seconds=10),
            factor=3,
            cap=timedelta(seconds=60),
            jitter=no_jitter,
        )
        assert at == NOW + timedelta(seconds=60)  # 90 s capped

    def test_decide(self) -> None:
        sent = decide(Outcome.sent(), 1, NOW)
        assert sent.state is DeliveryState.sent and sent.next_at is None
        failed = decide(Outcome.failed("HTTP 401", code="http_status"), 1, NOW)
        assert failed.state is DeliveryState.failed and failed.reason == "HTTP 401"
        busy = Outcome.retry("HTTP 503", code="http_status", retry_after=600)
        pending = decide(busy, 2, NOW, jitter=no_jitter)
        assert pending.state is DeliveryState.pending
        assert pending.next_at == NOW + timedelta(seconds=600)  # Retry-After beats 60 s
        assert decide(Outcome.retry("x", code="y"), 2, NOW, jitter=no_jitter).next_at == (
            NOW + timedelta(seconds=60)
        )

    def test_never_dropped(self) -> None:
        refused = Outcome.retry("connection refused", code="connection_refused")
        last = decide(refused, DEFAULT_MAX_ATTEMPTS, NOW)
        assert last.state is DeliveryState.failed and last.next_at is None
        assert "gave up after 12 attempts" in last.reason
        assert "connection refused" in last.reason and "retry by hand" in last.reason
