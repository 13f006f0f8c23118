"""The DICOM gateway: a pynetdicom Storage SCP (and Verification SCP) for hospitals that push
studies from a modality or their PACS.

- Association: the calling AE title (and, if registered, the source address) must belong to a
  hospital, else the association is rejected: A-ASSOCIATE-RJ, rejected-permanent, service-user,
  "calling AE title not recognised" (PS3.8 9.3.4).
- C-ECHO answers success.
- C-STORE: the data set is streamed to disk by pynetdicom (``STORE_RECV_CHUNKED_DATASET``) and
  stored byte for byte as received, behind the file meta header pynetdicom writes for the
  negotiated transfer syntax. It goes through the same ``ingest`` path as uploads and STOW-RS and
  is committed before the response. Statuses (PS3.4 B.2.3):

  - 0x0000 success, also for an identical resend and for a conflicting object (kept, flagged);
  - 0xA700 out of resources: our database, job queue or storage failed, or our disk is full;
    the sender should retry;
  - 0xA900 data set does not match SOP class: a required UID is missing or invalid;
  - 0xC000 cannot understand: the data set cannot be parsed or is truncated.

pynetdicom runs each association in its own thread; the database work is handed to the
process's event loop, so the gateway shares the API's engine in ``radrelay serve`` and has its
own in ``radrelay gateway``. There the objects of all associations that are waiting for their
index rows are committed together (``_GroupCommit``): each is still answered only after its row
committed, but parallel associations share a transaction instead of queueing for one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections import Counter
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from tempfile import NamedTemporaryFile
from typing import Any, cast

from pynetdicom import (
    AE,
    ALL_TRANSFER_SYNTAXES,
    AllStoragePresentationContexts,
    _config,
    dimse_messages,
    evt,
)
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import A_ASSOCIATE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import RequestHandler, ThreadedAssociationServer

from radrelay.audit.service import audit
from radrelay.cases.schemas import Source
from radrelay.errors import TEMPORARY, ServiceUnavailable
from radrelay.hospitals.service import CallingAE, hospitals
from radrelay.ingest import transport
from radrelay.ingest.prepare import Prepared, Received
from radrelay.ingest.schemas import FileOutcome
from radrelay.ingest.service import Origin, ingest
from radrelay.kit import dicom
from radrelay.kit.runtime import Runtime

log = logging.getLogger(__name__)

# Big objects go to a temporary file as their PDUs arrive instead of into memory.
_config.STORE_RECV_CHUNKED_DATASET = True


# pynetdicom's receive files, told apart from the other files in the receive area.
_RECEIVE_PREFIX = "cstore-"
# Older than this, a receive file belongs to no live association (they time out after 60 s of
# silence): it is what a killed process left behind.
_STALE_SECONDS = 3600.0


class _ReceiveFile:
    """pynetdicom's file for one incoming data set, which outlives a full disk: a write that
    fails is remembered (``failed``) instead of raised, so the C-STORE is still read to its end
    and answered 0xA700, where pynetdicom would otherwise abort the association and leave the
    sender without an answer. pynetdicom uses ``name``, ``write``, ``file.flush`` and
    ``close``."""

    def __init__(self, tmp_dir: Path, **kwargs: Any):
        self._file = NamedTemporaryFile(dir=tmp_dir, prefix=_RECEIVE_PREFIX, **kwargs)
        self.name = self._file.name
        self.file = self
        self.failed: OSError | None = None

    def write(self, data: bytes) -> int:
        if self.failed is None:
            try:
                return self._file.write(data)
            except OSError as exc:
                self.failed = exc
        return len(data)

    def flush(self) -> None:
        if self.failed is None:
            try:
                self._file.flush()
            except OSError as exc:
                self.failed = exc

    def close(self) -> None:
        with contextlib.suppress(OSError):  # flushing the rest fails again on a full disk
            self._file.close()


def receive_into(tmp_dir: Path) -> None:
    """pynetdicom writes each incoming data set to ``NamedTemporaryFile()`` in the system's
    temporary directory and has no setting for where. Point it at our receive area, on the file
    system of file storage (``Settings.tmp_dir``): the finished file is then hard-linked into
    storage rather than copied and fsynced again, and /tmp (often a small tmpfs) does not fill
    up with objects in flight."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    dimse_messages.NamedTemporaryFile = partial(_ReceiveFile, tmp_dir)  # type: ignore[assignment]
    cutoff = time.time() - _STALE_SECONDS
    for leftover in tmp_dir.glob(f"{_RECEIVE_PREFIX}*"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()


def _discard_partial(assoc: Any) -> None:
    """pynetdicom deletes a received file after the C-STORE handler, but not the file of a
    C-STORE whose association ended halfway (a dropped link, an aborting sender): every such
    transfer would leave its partial file behind for good."""
    message = getattr(assoc.dimse, "message", None)  # the DIMSE message still being received
    path = getattr(message, "_data_set_path", None)
    if path is not None:
        with contextlib.suppress(OSError):
            Path(path).unlink()


_STORE_TIMEOUT = 120.0


class _NoDelayServer(ThreadedAssociationServer):
    """TCP_NODELAY on every accepted connection: without it each small C-STORE response waits
    on Nagle and the peer's delayed ACK, and a sender manages about 20 instances/s."""

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address


def storage_ae(ae_title: str, max_associations: int) -> AE:
    """The gateway's application entity: every storage SOP class and Verification, in every
    transfer syntax pynetdicom knows."""
    ae = AE(ae_title=ae_title)
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cast(str, cx.abstract_syntax), ALL_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)
    ae.maximum_associations = max_associations
    # 0: no limit, so senders use large PDUs and we handle fewer, bigger chunks.
    ae.maximum_pdu_size = 0
    ae.require_called_aet = True
    ae.network_timeout = 60
    ae.acse_timeout = 30
    ae.dimse_timeout = 60
    return ae


def listen(ae: AE, host: str, port: int, handlers: list[Any]) -> ThreadedAssociationServer:
    """Serve ``ae`` on ``host:port`` from a thread of its own, with the gateway's transport:
    TCP_NODELAY, associations that wait on their socket (``transport``) and cheap copies of the
    presentation contexts. Also what ``bench/receiver.py`` serves, to measure pynetdicom alone."""
    if transport.supported():
        request_handler: type[RequestHandler] = transport.EventDrivenRequestHandler
    else:
        log.warning("this pynetdicom lacks what the gateway's event-driven loops override")
        request_handler = RequestHandler
    server = ae.make_server(
        (host, port),
        evt_handlers=handlers,
        server_class=_NoDelayServer,
        request_handler=request_handler,
    )
    transport.copy_contexts_cheaply(server)
    # As AE.start_server does, so that server.shutdown() and ae.shutdown() know it.
    ae._servers.append(server)
    thread = threading.Thread(target=server.serve_forever, name="dicom-gateway", daemon=True)
    thread.start()
    return server


class _GroupCommit:
    """Indexes the C-STOREs of every association, several to a unit of work.

    An association sends its next object only once the last one is answered, so one commit per
    object would make four associations take turns at the database (and at the event loop, for
    a handful of statements each). Here, whatever arrived while a batch was being committed goes
    into the next one: one queue check, one transaction and the per-study statements once for
    all of it. An association alone still gets a batch of one, at once: nothing waits to fill
    a batch. Every object is answered after the commit that holds its row, as before.

    Association threads call ``submit``; everything else runs on the event loop."""

    def __init__(self, runtime: Runtime, loop: asyncio.AbstractEventLoop):
        self.runtime = runtime
        self.loop = loop
        self._waiting: list[tuple[Origin, Prepared, Future[FileOutcome]]] = []
        self._draining = False

    def submit(self, origin: Origin, prepared: Prepared) -> Future[FileOutcome]:
        done: Future[FileOutcome] = Future()
        self.loop.call_soon_threadsafe(self._add, origin, prepared, done)
        return done

    def _add(self, origin: Origin, prepared: Prepared, done: Future[FileOutcome]) -> None:
        self._waiting.append((origin, prepared, done))
        if not self._draining:
            self._draining = True
            self.loop.create_task(self._drain())

    async def _drain(self) -> None:
        batch: list[tuple[Origin, Prepared, Future[FileOutcome]]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    await self._commit(batch)
                except Exception as exc:
                    if len(batch) == 1 or isinstance(exc, TEMPORARY):
                        # Alone, or the database or queue is down for everyone: all retry later.
                        for _, _, done in batch:
                            done.set_exception(exc)
                        continue
                    # One object's failure (a deadlock with another process, a constraint)
                    # must not fail the others: each gets a transaction of its own.
                    for item in batch:
                        try:
                            await self._commit([item])
                        except Exception as single:
                            item[2].set_exception(single)
        except BaseException as exc:  # cancelled as the process stops: nobody is left waiting
            for _, _, done in batch + self._waiting:
                if not done.done():
                    done.set_exception(exc)
            self._waiting = []
            raise
        finally:
            self._draining = False

    async def _commit(self, batch: list[tuple[Origin, Prepared, Future[FileOutcome]]]) -> None:
        # Checked per batch rather than per object: a queue that went away is noticed before
        # anything more is acknowledged.
        await ingest.require_queue(self.runtime)
        by_origin: dict[Origin, list[int]] = {}
        for i, (origin, _, _) in enumerate(batch):
            by_origin.setdefault(origin, []).append(i)
        outcomes: list[FileOutcome | None] = [None] * len(batch)
        async with self.runtime.uow() as session:
            for origin, positions in by_origin.items():
                stored = await ingest.store(
                    self.runtime, session, origin, [batch[i][1] for i in positions]
                )
                for i, result in zip(positions, stored, strict=True):
                    outcomes[i] = result
        for (_, _, done), outcome in zip(batch, outcomes, strict=True):
            done.set_result(cast(FileOutcome, outcome))


@dataclass
class _Association:
    calling: CallingAE
    address: str
    received: Counter[str] = field(default_factory=Counter)
    failed: int = 0


class DicomGateway:
    def __init__(self, runtime: Runtime, loop: asyncio.AbstractEventLoop):
        self.runtime = runtime
        self.loop = loop
        self._assocs: dict[int, _Association] = {}
        self._lock = threading.Lock()
        self._server: ThreadedAssociationServer | None = None
        self._index = _GroupCommit(runtime, loop)
        settings = runtime.settings
        receive_into(settings.tmp_dir)
        self.ae = storage_ae(settings.dicom_ae_title, settings.dicom_max_associations)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def start(self, host: str, port: int) -> None:
        handlers: list[Any] = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_RELEASED, self._on_end),
            (evt.EVT_ABORTED, self._on_end),
            (evt.EVT_CONN_CLOSE, self._on_end),
        ]
        self._server = listen(self.ae, host, port, handlers)
        log.info("DICOM gateway %s listening on %s:%s", self.ae.ae_title, host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- handlers (run in pynetdicom's association threads) -------------------------------

    def _call(self, coro: Any, timeout: float = _STORE_TIMEOUT) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def _on_requested(self, event: evt.Event) -> None:
        assoc = event.assoc
        request = cast(A_ASSOCIATE, assoc.requestor.primitive)  # set before EVT_REQUESTED
        calling = request.calling_ae_title.strip()
        address = str(assoc.requestor.address)
        try:
            found = self._call(self._resolve(calling, address), timeout=30)
        except Exception:
            log.exception("could not look up calling AE title")
            # Transient, service-provider, temporary congestion: the sender may retry.
            self._reject(assoc, 0x02, 0x03, 0x01)
            return
        if found is None:
            log.info("rejected association from unknown calling AE title (%s)", address)
            self._reject(assoc, 0x01, 0x01, 0x03)
            return
        with self._lock:
            self._assocs[id(assoc)] = _Association(found, address)

    @staticmethod
    def _reject(assoc: Any, result: int, source: int, diagnostic: int) -> None:
        assoc.acse.send_reject(result, source, diagnostic)
        # Wait until the A-ASSOCIATE-RJ is on the wire before pynetdicom closes the socket, as
        # its own rejection path does; otherwise the peer sees an abort instead of the reason.
        assoc.kill()

    async def _resolve(self, calling: str, address: str) -> CallingAE | None:
        async with self.runtime.db.unit_of_work() as session:
            found = await hospitals.resolve_calling_ae(session, calling, address)
        if found is None:
            await audit.record_now(
                self.runtime.db,
                None,
                "dicom.association_rejected",
                object_type="ae_title",
                object_id=calling[:128],
                ip=address,
                outcome="denied",
            )
        return found

    def _on_echo(self, event: evt.Event) -> int:
        return 0x0000

    def _on_store(self, event: evt.Event) -> int:
        with self._lock:
            state = self._assocs.get(id(event.assoc))
        if state is None:  # cannot happen: unknown callers never get an association
            return dicom.OUT_OF_RESOURCES
        request = cast(C_STORE, event.request)
        received = getattr(request, "_dataset_file", None)
        if isinstance(received, _ReceiveFile) and received.failed is not None:
            log.error("C-STORE could not be received: %s", received.failed.strerror)
            state.failed += 1
            return dicom.OUT_OF_RESOURCES
        path = Path(event.dataset_path)
        sop_uid = str(request.AffectedSOPInstanceUID or "")
        # An association alone waits for each step of its objects in turn, and handing the file
        # to a worker process and back costs it more than the worker saves (bench/ingest.py, one
        # storescu: 58-75/s against 52-62/s). Several associations keep the interpreter lock
        # busy receiving, and inspection is better done by the workers on the other cores.
        with self._lock:
            alone = len(self._assocs) == 1
        try:
            prepared = ingest.prepare(
                self.runtime, state.calling.hospital_id, Received(sop_uid, path), here=alone
            )
        except ServiceUnavailable as exc:
            # Our disk is full or storage is down: the sender should retry later.
            log.warning("C-STORE refused: %s", exc.message)
            state.failed += 1
            return dicom.OUT_OF_RESOURCES
        except OSError:
            # Our temporary file could not be read: our fault, the sender should retry.
            log.exception("C-STORE could not be inspected")
            state.failed += 1
            return dicom.OUT_OF_RESOURCES
        except Exception:
            # Anything else is an object our parser chokes on: retrying will not help.
            log.exception("C-STORE could not be inspected")
            state.failed += 1
            return dicom.CANNOT_UNDERSTAND
        if isinstance(prepared, FileOutcome):
            # Refused on inspection: answer with its status without touching the database, so
            # a database outage does not turn "fix this object" into "retry later".
            outcome: FileOutcome | None = prepared
        else:
            outcome = self._commit(state, prepared)
        if outcome is None:
            state.failed += 1
            return dicom.OUT_OF_RESOURCES
        if not outcome.outcome.ok:
            state.failed += 1
            log.info("C-STORE refused (0x%04X): %s", outcome.status, outcome.message)
            return outcome.status or dicom.CANNOT_UNDERSTAND
        state.received[outcome.study_instance_uid] += 1
        return 0x0000

    def _commit(self, state: _Association, prepared: Prepared) -> FileOutcome | None:
        """Index the object; None if that failed (the sender should retry)."""
        origin = Origin(Source.cstore, state.calling.hospital_id, calling_ae=state.calling.ae_title)
        try:
            return self._index.submit(origin, prepared).result(_STORE_TIMEOUT)
        except ServiceUnavailable as exc:
            log.warning("C-STORE refused: %s", exc.message)
            return None
        except (FutureTimeout, Exception):
            log.exception("C-STORE could not be committed")
            return None

    def _on_end(self, event: evt.Event) -> None:
        _discard_partial(event.assoc)
        with self._lock:
            state = self._assocs.pop(id(event.assoc), None)
        if state is None or (not state.received and not state.failed):
            return
        # The trail of what an association delivered, one event per study, written after it
        # ends so the per-instance path stays short.
        asyncio.run_coroutine_threadsafe(self._audit(state), self.loop)

    async def _audit(self, state: _Association) -> None:
        try:
            async with self.runtime.db.unit_of_work() as session:
                ingest.audit_receipt(
                    session,
                    None,
                    state.calling.hospital_id,
                    state.received,
                    source="cstore",
                    calling_ae=state.calling.ae_title,
                )
        except Exception:
            log.exception("could not write the audit event of an association")
