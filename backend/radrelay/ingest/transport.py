"""Associations of the DICOM gateway that wait for their peer instead of polling for it.

pynetdicom runs two loops per association, and both poll: the DUL thread sleeps 1 ms whenever
it finds nothing to do (``DULServiceProvider._run_loop_delay``; upstream: "TODO: try and make
this event based"), and the association thread sleeps 1 ms before each look at its DIMSE
message queue. On one C-STORE the sender waits through about four such naps: our response
waits for the DUL to wake up and send it, the sender's next command PDU and then its first data
PDU each arrive while the DUL sleeps, and the finished message waits for the association
thread. Measured with dcmtk's storescu on 0.5 MB CT objects, that was 3 ms of the 7.6 ms each
object took, and an idle association cost about 8% of a core.

Here both loops wait on what they are waiting for: the DUL thread in ``select`` on the socket
and a wake-up socket that ``send_pdu`` (our response) writes to, the association thread on its
message queue. The waits are bounded (``_DUL_WAIT``, ``_REACTOR_WAIT``), so the checks
pynetdicom makes on each turn of its loops (timers, kill flags, a release or abort from the
peer) still run, at most that much later. Everything else is pynetdicom's own code: the
subclasses override only where the loops wait, and are swapped in when the server creates an
association (``EventDrivenRequestHandler``).
"""

from __future__ import annotations

import contextlib
import queue
import select
import socket
from typing import Any, cast

from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dul import DULServiceProvider
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import RequestHandler, ThreadedAssociationServer

# How long a loop waits before making pynetdicom's checks again although nothing woke it:
# timers with seconds of resolution, a kill flag set without a wake-up, a peer's A-RELEASE-RQ
# (which reaches the association thread through another queue).
_DUL_WAIT = 0.05
_REACTOR_WAIT = 0.01


class _EventDrivenDUL(DULServiceProvider):
    def __init__(self, assoc: Association):
        super().__init__(assoc)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def _wake(self) -> None:
        # Full (a wake-up is already pending) or closed (the loop has ended): nothing to do.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def send_pdu(self, primitive: Any) -> None:
        super().send_pdu(primitive)
        self._wake()

    def kill_dul(self) -> None:
        super().kill_dul()
        self._wake()

    def stop_dul(self) -> bool:
        if self.state_machine.current_state == "Sta1":
            # pynetdicom sets the kill flag and waits for the thread: wake it up to see it.
            self._kill_thread = True
            self._wake()
        return super().stop_dul()

    def run_reactor(self) -> None:
        try:
            super().run_reactor()
        finally:
            self._wake_r.close()
            self._wake_w.close()

    def _is_transport_event(self) -> bool:
        """pynetdicom's check for an incoming PDU; when there is nothing at all to do, wait for
        one, or for a primitive to send, before answering."""
        if super()._is_transport_event():
            return True
        if self._kill_thread or not self.event_queue.empty() or self.to_provider_queue.queue:
            return False
        peer = getattr(self.socket, "socket", None)
        if peer is None:
            return False
        try:
            select.select([peer, self._wake_r], [], [], _DUL_WAIT)
        except (OSError, ValueError):  # closed meanwhile: pynetdicom's next check sees it
            return False
        with contextlib.suppress(OSError):
            self._wake_r.recv(4096)
        # A primitive to send or a PDU to read, each put on the event queue as the loop would
        # on its next turn (a primitive first, as it does).
        return self._process_recv_primitive() or super()._is_transport_event()


class _EventDrivenDIMSE(DIMSEServiceProvider):
    def get_msg(self, block: bool = False) -> Any:
        if block:
            return super().get_msg(block)
        # The association thread's non-blocking look, made after its 1 ms nap: wait a little
        # for a message instead, so one that arrives is served at once.
        try:
            return self.msg_queue.get(timeout=_REACTOR_WAIT)
        except queue.Empty:
            return None, None


def supported() -> bool:
    """Whether this pynetdicom has the internals the subclasses override (checked at start-up:
    a release that renamed them gets pynetdicom's own polling loops, slower but correct)."""
    return all(
        callable(getattr(cls, name, None))
        for cls, name in (
            (DULServiceProvider, "_is_transport_event"),
            (DULServiceProvider, "_process_recv_primitive"),
            (DULServiceProvider, "run_reactor"),
            (DIMSEServiceProvider, "get_msg"),
            (RequestHandler, "_create_association"),
        )
    )


class EventDrivenRequestHandler(RequestHandler):
    """pynetdicom's handler for an accepted connection, with the waiting providers swapped into
    the association it creates (before either of its threads starts)."""

    def _create_association(self) -> Association:
        assoc = super()._create_association()
        first = assoc.dul
        assoc.dul = _EventDrivenDUL(assoc)
        assoc.dimse = _EventDrivenDIMSE(assoc)
        # The timers live on the DUL: apply the timeouts to the new one, as Association does.
        assoc.acse_timeout = assoc.acse_timeout
        assoc.network_timeout = assoc.network_timeout
        # The socket, and the connection indication (Evt5) it already queued on the first DUL.
        assoc.dul.event_queue = first.event_queue
        assoc.set_socket(cast(Any, first.socket))
        return assoc


class _Contexts(list[PresentationContext]):
    """The server's supported presentation contexts, of which pynetdicom gives every new
    association a ``deepcopy``: for all storage SOP classes times all transfer syntaxes that is
    about 45 ms of interpreter time per association, re-validating every UID, while the other
    associations wait for the lock. Modalities often open an association per study or even per
    image. The association only reads these (negotiation builds new contexts), and UIDs are
    immutable strings: new context objects with their own lists are as good a copy."""

    def __deepcopy__(self, memo: dict[int, Any]) -> list[PresentationContext]:
        copies = []
        for cx in self:
            copy = PresentationContext.__new__(PresentationContext)
            copy.__dict__.update(cx.__dict__)
            copy._transfer_syntax = list(cx._transfer_syntax)
            copies.append(copy)
        return copies


def copy_contexts_cheaply(server: ThreadedAssociationServer) -> None:
    server.contexts = _Contexts(server.contexts)
