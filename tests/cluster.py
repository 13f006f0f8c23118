"""Many RadRelay processes on loopback, for the scale-out and fault tests.

A ``Cluster`` is one data directory, one database and (in scale-out) one Redis queue shared by
API processes (``radrelay serve --no-dicom``), DICOM gateways (``radrelay gateway``) and arq
workers (``radrelay worker``), each started, killed (SIGKILL, with the worker processes it
spawned, as when its container dies) and restarted on its own. On the embedded default a
cluster is one ``radrelay serve`` with its DICOM port, the only topology that mode has.

``TcpProxy`` (a process of its own, tests/tcp_proxy.py) stands between a process and PostgreSQL
or Redis so that a test can take the dependency away from that process (connections reset, new
ones refused, or held silent) and give it back, without touching the servers other tests
share.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset

from conftest import (
    ADMIN_PASSWORD,
    PG_URL,
    RADRELAY,
    REDIS_URL,
    ROOT,
    Api,
    World,
    free_port,
    fresh_postgres_database,
    login,
    prepare_database,
    run_cli,
    server_env,
    wait_until,
)
from helpers import part10, requests_only

SCALEOUT = bool(PG_URL and REDIS_URL)
needs_scaleout = pytest.mark.skipif(
    not SCALEOUT,
    reason="needs PostgreSQL and Redis: set RADRELAY_TEST_DATABASE_URL and "
    "RADRELAY_TEST_REDIS_URL (the CI's PostgreSQL + Redis run)",
)


@dataclass
class Endpoint:
    """What ``conftest.login`` and ``World`` need of a server: its address."""

    url: str


@dataclass
class Proc:
    """One RadRelay process of the cluster."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    http_port: int | None = None
    dicom_port: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    started: int = 0

    @property
    def url(self) -> str:
        assert self.http_port is not None, f"{self.name} serves no HTTP"
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.url)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self, *, wait: bool = True) -> Proc:
        assert not self.alive(), f"{self.name} is running"
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start {self.name} ===\n".encode())
            # A session of its own: a kill takes the worker processes it spawned with it.
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started += 1
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"{self.name} exited:\n{self.log_tail()}")
            if self.http_port is not None:
                try:
                    r = httpx.get(f"{self.url}/api/health", timeout=2)
                except httpx.HTTPError:
                    return False
                if r.status_code != 200:
                    return False
            if self.dicom_port is not None and not port_open(self.dicom_port):
                return False
            if self.http_port is None and self.dicom_port is None:
                # A worker: arq says so once it polls the queue.
                return self.started_lines() >= self.started
            return True

        wait_until(ready, timeout=timeout, interval=0.1, what=f"{self.name} to be ready")

    def started_lines(self) -> int:
        return self.log_path.read_text(errors="replace").count("Starting worker for")

    def kill(self) -> None:
        """SIGKILL to the process and every process it spawned: a crash, nothing flushed."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            self._reap()
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        self._reap()

    def _reap(self) -> None:
        """Whatever the process left running in its session (pool workers) goes too."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def owns_connection_from(self, port: int) -> bool:
        """Whether this process (or one it spawned) holds the loopback socket bound to
        ``port``: which process is on the far end of a connection a peer sees."""
        inode = _socket_inode(port)
        if inode is None or self.popen is None:
            return False
        return any(_holds(pid, inode) for pid in _session_pids(self.popen.pid))


@dataclass
class Cluster:
    data_dir: Path
    env: dict[str, str]
    logs: Path
    procs: list[Proc] = field(default_factory=list)
    _admin: Api | None = None

    @property
    def database_url(self) -> str:
        return self.env["RADRELAY_DATABASE_URL"]

    @property
    def storage_root(self) -> Path:
        return self.data_dir / "storage"

    def cli(self, *args: str, input: str | None = None) -> str:
        return run_cli(self.env, *args, input=input).stdout

    def _proc(self, name: str, argv: list[str], env: dict[str, str], **ports: int) -> Proc:
        proc = Proc(name, argv, {**self.env, **env}, self.logs / f"{name}.log", **ports)
        self.procs.append(proc)
        return proc

    def api(self, name: str, *, start: bool = True, **env: str) -> Proc:
        port = free_port()
        argv = [RADRELAY, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-dicom"]
        env.setdefault("RADRELAY_PUBLIC_URL", f"http://127.0.0.1:{port}")
        proc = self._proc(name, argv, env, http_port=port)
        return proc.start() if start else proc

    def serve(self, name: str, *, start: bool = True, **env: str) -> Proc:
        """The embedded default: API, gateway and jobs in one process."""
        port, dicom = free_port(), free_port()
        argv = [RADRELAY, "serve", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--dicom-port", str(dicom)]
        env.setdefault("RADRELAY_PUBLIC_URL", f"http://127.0.0.1:{port}")
        proc = self._proc(name, argv, env, http_port=port, dicom_port=dicom)
        return proc.start() if start else proc

    def gateway(self, name: str, *, start: bool = True, **env: str) -> Proc:
        port = free_port()
        argv = [RADRELAY, "gateway", "--host", "127.0.0.1", "--port", str(port)]
        proc = self._proc(name, argv, env, dicom_port=port)
        return proc.start() if start else proc

    def worker(self, name: str, *, start: bool = True, **env: str) -> Proc:
        proc = self._proc(name, [RADRELAY, "worker"], env)
        return proc.start() if start else proc

    @property
    def admin(self) -> Api:
        if self._admin is None:
            first = next(p for p in self.procs if p.http_port is not None and p.alive())
            self._admin = login(first.endpoint, "admin", ADMIN_PASSWORD)  # type: ignore[arg-type]
        return self._admin

    def world(self) -> World:
        """Hospitals and users made through the admin API (conftest's factories)."""
        return World(self.admin.server, self.admin)

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the cluster's database directly, as an operator checking it would."""
        import psycopg

        url = self.database_url.replace("postgresql+asyncpg://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as conn:
            return list(conn.execute(query, params).fetchall())  # type: ignore[arg-type]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.alive():
                proc.popen.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        for proc in self.procs:
            proc.stop()


@contextlib.contextmanager
def cluster(tmp: Path, *, data_dir: Path | None = None, **overrides: str) -> Iterator[Cluster]:
    """A migrated database (a fresh PostgreSQL database in scale-out) with an admin user; the
    processes are added by the test. Logs are kept in test-artifacts/ afterwards."""
    logs = tmp / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    data = data_dir or tmp / "data"
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(fresh_postgres_database()) if PG_URL else None
        env = server_env(data, database_url, **overrides)
        env.setdefault("RADRELAY_DATABASE_URL", f"sqlite+aiosqlite:///{tmp / 'radrelay.db'}")
        # Two cores run every process of the cluster: one ingest worker process each.
        env.setdefault("RADRELAY_INGEST_PROCESSES", "1")
        c = Cluster(data, env, logs)
        prepare_database(env)
        try:
            yield c
        finally:
            c.stop()
            artifacts = ROOT / "test-artifacts" / f"cluster-{tmp.name}"
            artifacts.mkdir(parents=True, exist_ok=True)
            for log in logs.glob("*.log"):
                with contextlib.suppress(OSError):
                    (artifacts / log.name).write_bytes(log.read_bytes())


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- which process holds a socket ------------------------------------------------------------


def _socket_inode(port: int) -> int | None:
    """The inode of the TCP socket whose local address is 127.0.0.1:``port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return int(fields[9])
    return None


def _session_pids(sid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ProcessLookupError):
                if os.getsid(int(entry)) == sid:
                    pids.append(int(entry))
    return pids


def _holds(pid: int, inode: int) -> bool:
    target = f"socket:[{inode}]"
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return True
    return False


# --- a dependency that can be taken away -------------------------------------------------------


class TcpProxy:
    """A loopback TCP proxy to ``target`` (host, port), run in a process of its own by
    tests/tcp_proxy.py, which says what ``cut``, ``restore``, ``stall`` and ``unstall`` do.
    ``clients`` maps the proxy's port towards the target to the client's port."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        script = Path(__file__).with_name("tcp_proxy.py")
        self._proc = subprocess.Popen(
            [sys.executable, str(script), target[0], str(target[1]), str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._answer() == "ready"

    @classmethod
    def to_url(cls, url: str) -> tuple[TcpProxy, str]:
        """A proxy to the server of a database or Redis URL, and that URL through the proxy."""
        found = re.match(r"^(\w[\w+]*://(?:[^@/]*@)?)([^:/]+):(\d+)(.*)$", url)
        assert found, url
        proxy = cls((found.group(2), int(found.group(3))))
        return proxy, f"{found.group(1)}127.0.0.1:{proxy.port}{found.group(4)}"

    def _answer(self) -> Any:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the proxy to {self.target} ended ({self._proc.poll()})")
        return json.loads(line)

    def _call(self, command: str) -> Any:
        assert self._proc.stdin is not None
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()
        return self._answer()

    @property
    def clients(self) -> dict[int, int]:
        return {int(ours): theirs for ours, theirs in self._call("clients").items()}

    def restore(self) -> None:
        self._call("restore")

    def cut(self) -> None:
        self._call("cut")

    def stall(self) -> None:
        self._call("stall")

    def unstall(self) -> None:
        self._call("unstall")

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self._call("close")
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


# --- clients -----------------------------------------------------------------------------------


class Feed(threading.Thread):
    """One user's live events (``/ws`` of one API process), collected until ``close()``."""

    def __init__(self, proc: Proc, token: str):
        super().__init__(daemon=True)
        self.url = f"ws://127.0.0.1:{proc.http_port}/ws?token={token}"
        self.events: list[dict[str, Any]] = []
        self.subscribed = threading.Event()
        self._closing = threading.Event()
        self.error: BaseException | None = None
        self.start()
        assert self.subscribed.wait(15), f"no hello from {proc.name}: {self.error}"

    def run(self) -> None:
        from websockets.sync.client import connect

        try:
            with connect(self.url, proxy=None, open_timeout=10) as ws:
                assert json.loads(ws.recv(timeout=10))["type"] == "hello"
                self.subscribed.set()
                while not self._closing.is_set():
                    try:
                        self.events.append(json.loads(ws.recv(timeout=0.2)))
                    except TimeoutError:
                        continue
        except BaseException as exc:
            self.error = exc

    def of(self, case_id: int) -> list[str]:
        """The types of the events received about a case, in order."""
        return [e["type"] for e in list(self.events) if e.get("case_id") == case_id]

    def close(self) -> None:
        self._closing.set()
        self.join(timeout=10)
        assert self.error is None, self.error


SUCCESS = 0x0000


def cstore(port: int, calling: str, datasets: list[Dataset]) -> list[int | None]:
    """Send datasets over one association to a gateway; one status per dataset, None when no
    answer came (the association died)."""
    from pynetdicom import AE

    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    for sop_class, syntax in {(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID) for ds in datasets}:
        ae.add_requested_context(sop_class, syntax)
    statuses: list[int | None] = []
    try:
        assoc = requests_only(ae.associate("127.0.0.1", port, ae_title="RADRELAY"))
        assert assoc.is_established, f"association from {calling} refused"
        for ds in datasets:
            if not assoc.is_established:
                statuses.append(None)
                continue
            rsp = assoc.send_c_store(ds)
            statuses.append(int(rsp.Status) if "Status" in rsp else None)
        if assoc.is_established:
            assoc.release()
    finally:
        ae.shutdown()
    return statuses


def stow(proc: Proc, token: str, datasets: list[Dataset], timeout: float = 60) -> httpx.Response:
    """One STOW-RS request of ``datasets`` (Part 10) to an API process."""
    boundary = f"stow-{uuid.uuid4().hex}"
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part10(ds) + b"\r\n"
        for ds in datasets
    )
    body += f"--{boundary}--\r\n".encode()
    return httpx.post(
        f"{proc.url}/dicomweb/studies",
        content=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": f'multipart/related; type="application/dicom"; boundary="{boundary}"',
            "Accept": "application/dicom+json",
        },
        timeout=timeout,
    )


def stored_sops(r: httpx.Response) -> set[str]:
    """The SOP Instance UIDs a STOW-RS answer says were stored."""
    if r.status_code not in (200, 202):
        return set()
    refs = r.json().get("00081199", {}).get("Value", [])
    return {ref["00081155"]["Value"][0] for ref in refs}
