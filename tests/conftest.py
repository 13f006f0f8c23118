"""The suite drives a real RadRelay: ``radrelay serve`` in a subprocess on loopback ports, on the
embedded default (SQLite, in-process jobs) or, with ``RADRELAY_TEST_DATABASE_URL`` and
``RADRELAY_TEST_REDIS_URL`` set (``make test`` under ``CI=true``), on PostgreSQL and Redis with a
``radrelay worker`` beside it. Tests talk to it as users do: HTTP, DICOMweb, the DICOM port.

Tests share one server and isolate themselves by creating their own hospitals and users with
unique names (``world`` fixture), so they never depend on each other's data.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RADRELAY = str(BIN / "radrelay")
PG_URL = os.environ.get("RADRELAY_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("RADRELAY_TEST_REDIS_URL")
ADMIN_PASSWORD = "admin-test-password"
# How much of a failed test's server logs to show: the jobs before it gave up, and the stack
# dumps (dozens of lines per thread and task).
LOG_LINES = 150


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll a real signal (never a fixed sleep) until it holds; returns its truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _dump_stacks(pid: int) -> None:
    """Ask a RadRelay process for its thread stacks (SIGUSR1) and asyncio tasks (SIGUSR2),
    which it writes to its log (kit/diagnostics.py)."""
    for sig in (signal.SIGUSR1, signal.SIGUSR2):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _logs_of_failed(item: pytest.Item) -> list[Path]:
    """The logs of the servers and tests/cluster.py clusters the test used (found by shape:
    cluster.py imports this module); each live process is asked for its stacks first."""
    logs: list[Path] = []
    for value in getattr(item, "funcargs", {}).values():
        server = value if isinstance(value, Server) else getattr(value, "server", None)
        if isinstance(server, Server) and server.log_path not in logs:
            for popen in server.procs:
                if popen.poll() is None:
                    _dump_stacks(popen.pid)
            logs.append(server.log_path)
        cluster = getattr(value, "c", value)
        for proc in getattr(cluster, "procs", []):
            if hasattr(proc, "log_path") and proc.log_path not in logs:
                if proc.alive():
                    _dump_stacks(proc.pid)
                logs.append(proc.log_path)
    return logs


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[pytest.TestReport]:
    """A failed test shows the end of its servers' logs (the worker's jobs in scale-out mode)
    with their stacks: CI keeps no files, and a timeout waiting for a job says nothing of why
    by itself."""
    report: pytest.TestReport = yield
    if report.when == "call" and report.failed:
        logs = _logs_of_failed(item)
        if logs:
            time.sleep(1)  # the task dumps are written by each process's event loop
        for path in logs:
            with contextlib.suppress(OSError):
                tail = path.read_text(errors="replace").splitlines()[-LOG_LINES:]
                report.sections.append((f"end of {path.name}", "\n".join(tail)))
        if logs:
            # This process's threads too: where the test itself waits, and any thread left
            # over from earlier tests that competes with it.
            with tempfile.TemporaryFile("w+") as out:
                faulthandler.dump_traceback(out, all_threads=True)
                out.seek(0)
                report.sections.append(("threads of the test process", out.read()))
    return report


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database for this run next to the given one, dropped afterwards."""
    import psycopg

    assert PG_URL is not None
    name = f"radrelay_test_{secrets.token_hex(4)}"
    admin = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare_database(env: dict[str, str]) -> None:
    """Migrates the server's database and creates its admin (ADMIN_PASSWORD)."""
    run_cli(env, "migrate")
    run_cli(
        env,
        "users",
        "create",
        "admin",
        "--role",
        "admin",
        "--password-stdin",
        input=ADMIN_PASSWORD + "\n",
    )


def run_cli(
    env: dict[str, str], *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``radrelay ARGS`` with the server's environment; with ``check``, a failure fails the test
    with its output."""
    result = subprocess.run(
        [RADRELAY, *args], env=env, input=input, capture_output=True, text=True, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"radrelay {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class Server:
    """A running ``radrelay serve`` (and worker, in scale-out mode)."""

    data_dir: Path
    env: dict[str, str]
    http_port: int
    dicom_port: int
    log_path: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def database_url(self) -> str:
        return (
            self.env.get("RADRELAY_DATABASE_URL")
            or f"sqlite+aiosqlite:///{self.data_dir / 'radrelay.db'}"
        )

    @property
    def storage_root(self) -> Path:
        return self.data_dir / "storage"

    def cli(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(self.env, *args, input=input, check=check)

    def start(self) -> None:
        log = self.log_path.open("ab")
        serve = subprocess.Popen(
            [
                RADRELAY,
                "serve",
                "--port",
                str(self.http_port),
                "--dicom-port",
                str(self.dicom_port),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(serve)
        if "RADRELAY_REDIS_URL" in self.env:
            self.procs.append(
                subprocess.Popen(
                    [RADRELAY, "worker"], env=self.env, stdout=log, stderr=subprocess.STDOUT
                )
            )

        def healthy() -> bool:
            if serve.poll() is not None:
                raise AssertionError(f"radrelay serve exited:\n{self.log_path.read_text()[-4000:]}")
            try:
                return httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=60, what="the server to become healthy")
        wait_until(lambda: _port_open(self.dicom_port), timeout=30, what="the DICOM port")

    def stop(self, kill: bool = False) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill() if kill else proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def server_env(data_dir: Path, database_url: str | None, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADRELAY_")}
    env.update(
        RADRELAY_DATA_DIR=str(data_dir),
        RADRELAY_SECRET_KEY=secrets.token_urlsafe(32),
        RADRELAY_STABLE_AGE_SECONDS="2",
        RADRELAY_SWEEP_INTERVAL_SECONDS="0.5",
        RADRELAY_MAX_UPLOAD_BYTES=str(24 * 1024 * 1024),
        RADRELAY_MAX_INSTANCE_BYTES=str(8 * 1024 * 1024),
        RADRELAY_LOG_LEVEL="info",
        RADRELAY_DICOM_HOST="127.0.0.1",
        RADRELAY_REFRESH_REUSE_GRACE_SECONDS="1",
        # Cases nobody could take are routed again a second after they wait, not thirty.
        RADRELAY_SLA_WATCH_SECONDS="1",
        # Tests change profiles and route at once; the roster cache is the benchmark's business.
        RADRELAY_ROSTER_CACHE_SECONDS="0",
        # A peer that was down is tried again within seconds, not minutes.
        RADRELAY_DELIVERY_BACKOFF_SECONDS="1",
        RADRELAY_DELIVERY_RETRY_SECONDS="1",
    )
    if database_url:
        env["RADRELAY_DATABASE_URL"] = database_url
    if REDIS_URL:
        env["RADRELAY_REDIS_URL"] = REDIS_URL
        env["RADRELAY_QUEUE_NAME"] = f"radrelay-test:{secrets.token_hex(4)}"
    env.update(overrides)
    return env


@contextlib.contextmanager
def running_server(tmp: Path, **overrides: str) -> Iterator[Server]:
    """A migrated, started server with an admin user, on its own database."""
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(fresh_postgres_database()) if PG_URL else None
        env = server_env(tmp, database_url, **overrides)
        server = Server(tmp, env, free_port(), free_port(), tmp / "server.log")
        # dicomweb-client sends Host without the port: the server must know its own address to
        # write absolute URLs (RetrieveURL, BulkDataURI), as a deployment behind a proxy does.
        env.setdefault("RADRELAY_PUBLIC_URL", server.url)
        prepare_database(env)
        server.start()
        try:
            yield server
        finally:
            server.stop()
            artifacts = ROOT / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            with contextlib.suppress(OSError):
                shutil.copy(server.log_path, artifacts / f"server-{tmp.name}.log")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("server")) as s:
        yield s


class Api:
    """An HTTP client for one signed-in user."""

    def __init__(self, server: Server, token: str | None = None, username: str = ""):
        self.server = server
        self.username = username
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=server.url, headers=headers, timeout=120)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.http, name)


def login(server: Server, username: str, password: str) -> Api:
    r = httpx.post(
        f"{server.url}/api/auth/token", data={"username": username, "password": password}
    )
    assert r.status_code == 200, r.text
    return Api(server, r.json()["access_token"], username)


@dataclass
class Hospital:
    id: int
    code: str
    ae_title: str
    tech: Api
    tech_password: str


class World:
    """Factories for a test's own hospitals and users, created through the admin API."""

    def __init__(self, server: Server, admin: Api):
        self.server = server
        self.admin = admin

    def hospital(self, *, source_addresses: list[str] | None = None) -> Hospital:
        tag = uuid.uuid4().hex[:8].upper()
        code, ae = f"H{tag}", f"AE{tag}"
        r = self.admin.post(
            "/api/hospitals",
            json={
                "code": code,
                "name": f"县医院 County Hospital {tag}",
                "ae_titles": [{"ae_title": ae, "source_addresses": source_addresses or []}],
            },
        )
        assert r.status_code == 201, r.text
        username, password = f"tech-{tag.lower()}", secrets.token_urlsafe(12)
        self.user(username, "tech", password, hospital_code=code)
        return Hospital(r.json()["id"], code, ae, login(self.server, username, password), password)

    def user(
        self, username: str, role: str, password: str, hospital_code: str | None = None
    ) -> None:
        r = self.admin.post(
            "/api/users",
            json={
                "username": username,
                "role": role,
                "password": password,
                "hospital_code": hospital_code,
            },
        )
        assert r.status_code == 201, r.text

    def signed_in(self, role: str) -> Api:
        username, password = f"{role}-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(12)
        self.user(username, role, password)
        return login(self.server, username, password)


_admin_sessions: dict[str, tuple[float, Api]] = {}


def admin_of(server: Server) -> Api:
    """The admin, signed in once and again every ten minutes (access tokens last 15)."""
    signed_in = _admin_sessions.get(server.url)
    if signed_in is None or time.monotonic() - signed_in[0] > 600:
        signed_in = (time.monotonic(), login(server, "admin", ADMIN_PASSWORD))
        _admin_sessions[server.url] = signed_in
    return signed_in[1]


@pytest.fixture
def world(server: Server) -> World:
    return World(server, admin_of(server))
