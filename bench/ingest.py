"""Ingest throughput: STOW-RS and C-STORE into a real ``radrelay serve``, printed as a table.

    .venv/bin/python bench/ingest.py                 # 500 x 512x512 CT, embedded and PostgreSQL
    .venv/bin/python bench/ingest.py --quick         # a small smoke run (numbers not comparable)
    .venv/bin/python bench/ingest.py --backends embedded --profile /tmp/prof
    .venv/bin/python bench/ingest.py --only storescu    # only the scenarios named so

Each backend gets its own server, started as the test suite starts it (``radrelay migrate``,
``radrelay users create admin``, ``radrelay serve`` on loopback ports):

- ``embedded``: the default, a SQLite file, file storage and in-process jobs, no Redis;
- ``postgres``: a fresh PostgreSQL database (dropped at the end), Redis with a unique queue name
  and a ``radrelay worker`` beside the server.

Scenarios, each sending N instances the server has not seen (its own hospital, AE title, tech
user, patient and UIDs), timed from the moment the clients start (storescu: its process, with
its association negotiation) to the last response:

1. STOW-RS, requests of 50 instances (bodies built in advance from the files' bytes, so client
   encoding is not measured), one client, then two concurrent clients;
2. C-STORE over one association: dcmtk ``storescu`` (``TCP_NODELAY=1``), then a pynetdicom SCU
   streaming the files (``STORE_SEND_CHUNKED_DATASET``, so it does not re-encode them);
3. C-STORE over four parallel associations (four ``storescu`` on N/4 files each);
4. ceilings, once and without a server: the same ``storescu`` clients sent to receivers that
   answer success and do nothing else, ``bench/receiver.py`` (pynetdicom as the gateway sets it
   up) in one and in two processes, and dcmtk's ``storescp --fork``.

Before each scenario the benchmark waits for the server and its worker to go idle, so that
background work left by the previous one is not counted against it. After each scenario the
hospital's cases are read through the API as its technician, and the scenario counts only if
they hold all N instances. The pixel data (a phantom CT from
``radrelay.synth``) is generated once per run; every scenario re-identifies it (UIDs, patient)
and writes its own files. Clients, the server and the worker all share this machine's cores, so
the numbers are a lower bound of what the server alone would do. Targets are reported, never
asserted; the exit status is non-zero only when a scenario failed (errors, missing instances).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
RADRELAY = str(BIN / "radrelay")
PY_SPY = str(BIN / "py-spy")
# dcmtk's, by path: pynetdicom installs a storescu of its own into the venv.
STORESCU = "/usr/bin/storescu"
ADMIN_PASSWORD = "admin-bench-password"
CALLED_AE = "RADRELAY"

STOW_TARGET = 250.0  # instances/s, whole scenario
CSTORE_TARGET = 100.0  # instances/s, per association


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the machine ----------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def dcmtk_version() -> str:
    try:
        out = subprocess.run([STORESCU, "--version"], capture_output=True, text=True, timeout=10)
    except OSError:
        return "storescu not found"
    return out.stdout.splitlines()[0].strip("$ ") if out.stdout else "unknown"


# --- synthetic data -------------------------------------------------------------------------


class Phantom:
    """N CT slices generated once (the expensive part: the phantom's pixels); each scenario gets
    a re-identified copy written to its own folder."""

    def __init__(self, instances: int, size: int):
        from radrelay import synth

        self.datasets = list(
            synth.study("CT", seed=1, slices=instances, size=size, hospital="BENCH")
        )

    def write(self, out: Path, hospital_code: str, tag: str, groups: int) -> list[list[Path]]:
        """Files of a new study (new UIDs, patient of ``hospital_code``) under ``out``, split into
        ``groups`` sub-folders of consecutive slices."""
        from pydicom.uid import generate_uid

        uids: dict[str, str] = {}

        def new_uid(old: str) -> str:
            if old not in uids:
                uids[old] = str(generate_uid(entropy_srcs=[tag, old]))
            return uids[old]

        patient_id = f"{hospital_code[:8]}{secrets.randbelow(9 * 10**6) + 10**6}"
        n = len(self.datasets)
        folders: list[list[Path]] = [[] for _ in range(groups)]
        for i, ds in enumerate(self.datasets):
            group = i * groups // n
            folder = out / f"assoc{group + 1}"
            folder.mkdir(parents=True, exist_ok=True)
            ds.StudyInstanceUID = new_uid(ds.StudyInstanceUID)
            ds.SeriesInstanceUID = new_uid(ds.SeriesInstanceUID)
            ds.FrameOfReferenceUID = new_uid(ds.FrameOfReferenceUID)
            ds.SOPInstanceUID = new_uid(ds.SOPInstanceUID)
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.PatientID = patient_id
            ds.AccessionNumber = f"A{tag[:15]}"
            path = folder / f"IM{i + 1:05d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            folders[group].append(path)
        return folders


def stow_bodies(paths: list[Path], batch: int) -> list[tuple[bytes, str]]:
    """multipart/related bodies of ``batch`` instances each, with their Content-Type."""
    bodies = []
    for start in range(0, len(paths), batch):
        boundary = f"radrelay-bench-{uuid.uuid4().hex}"
        chunks: list[bytes] = []
        for path in paths[start : start + batch]:
            chunks += [
                f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(),
                path.read_bytes(),
                b"\r\n",
            ]
        chunks.append(f"--{boundary}--\r\n".encode())
        ctype = f'multipart/related; type="application/dicom"; boundary={boundary}'
        bodies.append((b"".join(chunks), ctype))
    return bodies


# --- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Server:
    """A migrated ``radrelay serve`` (and ``radrelay worker`` with Redis) with an admin user."""

    backend: str
    data_dir: Path
    env: dict[str, str]
    http_port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    failed: bool = False  # a scenario failed: show the end of the log
    pg_admin_url: str | None = None  # to find the PostgreSQL backends serving our database

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of our processes (serve + worker) and, on PostgreSQL, of the
        backends connected to our database (by pid; SQLite runs inside the server process)."""
        used = {"server": sum(tree_cpu(p.pid) for p in self.procs.values())}
        if self.pg_admin_url:
            import psycopg

            name = self.env["RADRELAY_DATABASE_URL"].rpartition("/")[2]
            with psycopg.connect(self.pg_admin_url, autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)
                ).fetchall()
            used.update({f"pg{pid}": process_cpu(pid) for (pid,) in rows})
        return used

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def cli(self, *args: str, input: str | None = None) -> None:
        result = subprocess.run(
            [RADRELAY, *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if result.returncode != 0:
            raise RuntimeError(f"radrelay {args[0]} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.cli("migrate")
        self.cli(
            "users", "create", "admin", "--role", "admin", "--password-stdin",
            input=ADMIN_PASSWORD + "\n",
        )  # fmt: skip
        logfile = self.log_path.open("ab")
        self.procs["serve"] = subprocess.Popen(
            [
                RADRELAY,
                "serve",
                "--port",
                str(self.http_port),
                "--dicom-port",
                str(self.dicom_port),
            ],
            env=self.env,
            stdout=logfile,
            stderr=subprocess.STDOUT,
        )
        if "RADRELAY_REDIS_URL" in self.env:
            self.procs["worker"] = subprocess.Popen(
                [RADRELAY, "worker"], env=self.env, stdout=logfile, stderr=subprocess.STDOUT
            )
        serve = self.procs["serve"]

        def healthy() -> bool:
            if serve.poll() is not None:
                raise RuntimeError(f"radrelay serve exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                return httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 60, "the server to become healthy")
        wait_until(lambda: port_open(self.dicom_port), 30, "the DICOM port")

    def stop(self) -> None:
        stop_processes(list(self.procs.values()))
        self.procs.clear()


def stop_processes(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to all, then wait for each; SIGKILL to any still there after 20 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stat_seconds(pid: int, first: int) -> float:
    """The sum of a user and a system CPU field of /proc/PID/stat (``first`` and the next, counted
    after the command name), in seconds; 0 if the process is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads); 0 if it is gone."""
    return _stat_seconds(pid, 11)  # utime, stime


def reaped_cpu(pid: int) -> float:
    """CPU seconds of a process's children that it has waited for (storescp's per-association
    processes, once they are gone); 0 if it is gone."""
    return _stat_seconds(pid, 13)  # cutime, cstime


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and all its descendants: the server's ingest worker processes
    (a forkserver pool) do much of the work and must be counted with it."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rpartition(")")[2].split()
            children[int(fields[1])].append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += process_cpu(current)
        todo.extend(children.get(current, ()))
    return total


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> tuple[float, float]:
    """(server, database) CPU seconds between two ``Server.cpu`` readings."""
    delta = {k: v - before.get(k, 0.0) for k, v in after.items()}
    return delta.pop("server"), sum(delta.values())


def settle(
    server: Server, quiet: float = 0.1, interval: float = 0.5, limit: float = 120.0
) -> float:
    """Wait until the server (and its worker) is idle, under ``quiet`` of a core for one
    ``interval``: what the previous scenario left to do in the background (studies becoming
    stable, routing, offload) must not be counted against the next one. Returns the seconds
    waited."""
    started = time.monotonic()
    before = server.cpu()
    while time.monotonic() - started < limit:
        time.sleep(interval)
        after = server.cpu()
        busy, database = cpu_delta(before, after)
        if busy + database < quiet * interval:
            break
        before = after
    return time.monotonic() - started


def client_cpu() -> float:
    """CPU seconds of this process (httpx, pynetdicom) and its waited-for children (storescu)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def base_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADRELAY_")}
    env.update(
        RADRELAY_DATA_DIR=str(data_dir),
        RADRELAY_SECRET_KEY=secrets.token_urlsafe(32),
        RADRELAY_DICOM_HOST="127.0.0.1",
        RADRELAY_LOG_LEVEL="info",
    )
    return env


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty database next to ``admin_url``, dropped afterwards (asyncpg URL)."""
    import psycopg

    name = f"radrelay_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = admin_url.rpartition("/")[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        log(f"dropped database {name}")


@contextlib.contextmanager
def redis_queue(redis_url: str) -> Iterator[str]:
    """A unique arq queue name; its keys are deleted afterwards."""
    import redis

    queue = f"radrelay-bench:{secrets.token_hex(4)}"
    try:
        yield queue
    finally:
        with contextlib.suppress(Exception):
            client = redis.Redis.from_url(redis_url)
            keys = list(client.scan_iter(match=f"{queue}*"))
            if keys:
                client.delete(*keys)
            client.close()


@contextlib.contextmanager
def running_server(backend: str, tmp: Path, args: argparse.Namespace) -> Iterator[Server]:
    with contextlib.ExitStack() as stack:
        data_dir = tmp / f"server-{backend}"
        env = base_env(data_dir)
        env.update(item.split("=", 1) for item in args.set)
        if backend == "postgres":
            env["RADRELAY_DATABASE_URL"] = stack.enter_context(postgres_database(args.pg_url))
            env["RADRELAY_REDIS_URL"] = args.redis_url
            env["RADRELAY_QUEUE_NAME"] = stack.enter_context(redis_queue(args.redis_url))
        server = Server(backend, data_dir, env)
        if backend == "postgres":
            server.pg_admin_url = args.pg_url
        try:
            server.start()
            yield server
        finally:
            server.stop()
            if server.failed and server.log_path.exists():
                tail = server.log_path.read_text(errors="replace").splitlines()[-60:]
                log(f"{backend}: the server's log ends with:\n" + "\n".join(tail))
            if args.keep:
                log(f"kept {data_dir}")
            else:
                shutil.rmtree(data_dir, ignore_errors=True)


def login(server: Server, username: str, password: str) -> httpx.Client:
    r = httpx.post(
        f"{server.url}/api/auth/token", data={"username": username, "password": password}
    )
    r.raise_for_status()
    token = r.json()["access_token"]
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=300
    )


@dataclass
class Hospital:
    code: str
    ae_title: str
    tech: httpx.Client


def new_hospital(server: Server, admin: httpx.Client) -> Hospital:
    tag = uuid.uuid4().hex[:8].upper()
    code, ae = f"B{tag}", f"BENCH{tag}"
    r = admin.post(
        "/api/hospitals",
        json={
            "code": code,
            "name": f"Bench Hospital {tag}",
            "ae_titles": [{"ae_title": ae, "source_addresses": []}],
        },
    )
    if r.status_code != 201:
        raise RuntimeError(f"could not create a hospital: {r.status_code} {r.text}")
    username, password = f"bench-tech-{tag.lower()}", secrets.token_urlsafe(12)
    r = admin.post(
        "/api/users",
        json={"username": username, "role": "tech", "password": password, "hospital_code": code},
    )
    if r.status_code != 201:
        raise RuntimeError(f"could not create a user: {r.status_code} {r.text}")
    return Hospital(code, ae, login(server, username, password))


def indexed_instances(hospital: Hospital) -> int:
    """Instances in the hospital's cases, as its technician sees them."""
    total, offset = 0, 0
    while True:
        r = hospital.tech.get("/api/cases", params={"limit": 500, "offset": offset})
        r.raise_for_status()
        page = r.json()
        total += sum(int(c["number_of_instances"]) for c in page["items"])
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return total


# --- profiling ------------------------------------------------------------------------------


@contextlib.contextmanager
def profiled(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy on the server process while the block runs (``--profile``)."""
    if out is None:
        yield
        return
    proc = subprocess.Popen(
        [PY_SPY, "record", "--gil", "-p", str(pid), "-f", "raw", "-o", str(out), "-r", "200"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # let py-spy attach before the clock starts
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def summarize_profile(path: Path, top: int = 12) -> list[str]:
    """Own time (leaf frames) and time inside notable radrelay/library functions."""
    if not path.exists():
        return [f"  (no profile written to {path})"]
    own: collections.Counter[str] = collections.Counter()
    inside: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[_short(frames[-1])] += n
        for name in {_short(f) for f in frames[1:] if "radrelay" in f or "site-packages" in f}:
            inside[name] += n
    if not total:
        return ["  (empty profile)"]
    lines = [f"  {total} samples holding the GIL; own time:"]
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append("  inclusive time (radrelay and libraries):")
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in inside.most_common(top)]
    return lines


def _short(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``func (module.py)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    if "site-packages/" in where:
        where = where.split("site-packages/", 1)[1]
    elif "/radrelay/" in where:
        where = "radrelay/" + where.split("/radrelay/", 1)[1]
    else:
        where = Path(where).name
    return f"{name} ({where.rsplit(':', 1)[0]})"


# --- scenarios ------------------------------------------------------------------------------


@dataclass
class Result:
    scenario: str
    backend: str
    instances: int
    seconds: float | None = None
    per_association: list[float] = field(default_factory=list)
    server_cpu: float = 0.0  # seconds: serve (+ worker)
    database_cpu: float = 0.0  # seconds: PostgreSQL backends
    client_cpu: float = 0.0  # seconds: httpx / pynetdicom / storescu
    kind: str = "stow"  # or "cstore"
    error: str = ""

    @property
    def rate(self) -> float | None:
        return self.instances / self.seconds if self.seconds else None

    @property
    def met(self) -> bool:
        if self.error or self.rate is None:
            return False
        if self.kind == "stow":
            return self.rate >= STOW_TARGET
        return min(self.per_association or [self.rate]) >= CSTORE_TARGET


# Sends the files (one group per association) and returns (seconds, per-association rates).
Runner = Callable[
    [Server, Hospital, list[list[Path]], argparse.Namespace], tuple[float, list[float]]
]


@dataclass
class Scenario:
    name: str
    kind: str  # "stow" or "cstore"
    associations: int  # 1 for STOW-RS
    run: Runner


def stow(clients: int) -> Runner:
    def run(
        server: Server, hospital: Hospital, groups: list[list[Path]], args: argparse.Namespace
    ) -> tuple[float, list[float]]:
        paths = [p for g in groups for p in g]
        bodies = stow_bodies(paths, args.batch)
        token = hospital.tech.headers["Authorization"]
        referenced = [0] * clients
        problems: list[str] = []

        def client(k: int) -> None:
            with httpx.Client(
                base_url=server.url,
                headers={"Authorization": token, "Accept": "application/dicom+json"},
                timeout=300,
            ) as http:
                for body, ctype in bodies[k::clients]:
                    try:
                        r = http.post(
                            "/dicomweb/studies", content=body, headers={"Content-Type": ctype}
                        )
                    except httpx.HTTPError as exc:
                        problems.append(f"{type(exc).__name__}: {exc}")
                        continue
                    if r.status_code != 200:
                        problems.append(f"HTTP {r.status_code}: {r.text[:300]}")
                        continue
                    refs = r.json().get("00081199", {}).get("Value", [])
                    referenced[k] += len(refs)

        threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
        if problems:
            raise RuntimeError(f"{len(problems)} STOW-RS requests failed; first: {problems[0]}")
        if sum(referenced) != len(paths):
            raise RuntimeError(f"STOW-RS referenced {sum(referenced)} of {len(paths)} instances")
        return seconds, []

    return run


def storescu(
    server: Server, hospital: Hospital, groups: list[list[Path]], args: argparse.Namespace
) -> tuple[float, list[float]]:
    return send_storescu([server.dicom_port], hospital.ae_title, groups)


def send_storescu(
    ports: list[int], calling_ae: str, groups: list[list[Path]]
) -> tuple[float, list[float]]:
    """One ``storescu`` process (one association) per group of files, all at once; group k goes
    to ``ports[k % len(ports)]``. Returns (seconds, per-association rates)."""
    env = {**os.environ, "TCP_NODELAY": "1"}
    seconds: list[float] = [0.0] * len(groups)
    problems: list[str] = []
    barrier = threading.Barrier(len(groups) + 1)

    def send(k: int, folder: Path) -> None:
        cmd = [STORESCU, "-aec", CALLED_AE, "-aet", calling_ae, "127.0.0.1"]
        cmd += [str(ports[k % len(ports)]), "+sd", "+r", str(folder)]
        barrier.wait()
        began = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        seconds[k] = time.perf_counter() - began
        if proc.returncode != 0:
            problems.append(f"storescu exited {proc.returncode}: {proc.stderr[-600:]}")
        elif "E:" in proc.stdout + proc.stderr:
            problems.append(f"storescu reported errors: {(proc.stdout + proc.stderr)[-600:]}")

    threads = [
        threading.Thread(target=send, args=(k, g[0].parent), daemon=True)
        for k, g in enumerate(groups)
    ]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    total = time.perf_counter() - started
    if problems:
        raise RuntimeError(problems[0])
    return total, [len(g) / s for g, s in zip(groups, seconds, strict=True)]


def pynetdicom_scu(
    server: Server, hospital: Hospital, groups: list[list[Path]], args: argparse.Namespace
) -> tuple[float, list[float]]:
    from pydicom.uid import ExplicitVRLittleEndian
    from pynetdicom import AE, _config
    from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

    _config.STORE_SEND_CHUNKED_DATASET = True  # stream the files' bytes, no re-encoding
    paths = [p for g in groups for p in g]
    ae = AE(ae_title=hospital.ae_title)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    ae.network_timeout = ae.dimse_timeout = 120
    started = time.perf_counter()
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=CALLED_AE)
    if not assoc.is_established:
        raise RuntimeError("pynetdicom: the association was not established")
    # As storescu with TCP_NODELAY=1: no Nagle delay on the small command PDUs.
    assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
    failed = 0
    try:
        for path in paths:
            status = assoc.send_c_store(path)
            if not status or int(status.Status) != 0:
                failed += 1
    finally:
        assoc.release()
    seconds = time.perf_counter() - started
    if failed:
        raise RuntimeError(f"pynetdicom: {failed} of {len(paths)} C-STOREs failed")
    return seconds, [len(paths) / seconds]


def scenarios(batch: int, only: str = "") -> list[Scenario]:
    """The scenarios whose names contain ``only`` (case-insensitive; all when empty)."""
    every = [
        Scenario(f"STOW-RS, {batch}/request, 1 client", "stow", 1, stow(1)),
        Scenario(f"STOW-RS, {batch}/request, 2 clients", "stow", 1, stow(2)),
        Scenario("C-STORE storescu, 1 association", "cstore", 1, storescu),
        Scenario("C-STORE pynetdicom, 1 association", "cstore", 1, pynetdicom_scu),
        Scenario("C-STORE storescu, 4 associations", "cstore", 4, storescu),
    ]
    return [s for s in every if only.lower() in s.name.lower()]


def run_scenario(
    scenario: Scenario,
    server: Server,
    admin: httpx.Client,
    phantom: Phantom,
    work: Path,
    args: argparse.Namespace,
) -> Result:
    n = len(phantom.datasets)
    result = Result(scenario.name, server.backend, n, kind=scenario.kind)
    folder = work / f"{server.backend}-{secrets.token_hex(3)}"
    try:
        hospital = new_hospital(server, admin)
        tag = f"{hospital.code}:{scenario.name}"
        groups = phantom.write(folder, hospital.code, tag, scenario.associations)
        profile = None
        if args.profile:
            slug = "".join(c if c.isalnum() else "-" for c in scenario.name.lower())
            profile = args.profile / f"{server.backend}-{slug}.txt"
        waited = settle(server)
        log(f"{server.backend}: {scenario.name} ... (after {waited:.1f} s for the server to idle)")
        with profiled(server.procs["serve"].pid, profile):
            cpu_before, client_before = server.cpu(), client_cpu()
            seconds, per_association = scenario.run(server, hospital, groups, args)
            client_after, cpu_after = client_cpu(), server.cpu()
        result.seconds, result.per_association = seconds, per_association
        result.server_cpu, result.database_cpu = cpu_delta(cpu_before, cpu_after)
        result.client_cpu = client_after - client_before
        # Everything acknowledged is committed before the acknowledgement; the API must show it.
        indexed = indexed_instances(hospital)
        if indexed != n:
            raise RuntimeError(f"the API shows {indexed} of {n} instances")
        log(f"{server.backend}: {scenario.name}: {n / seconds:.0f} instances/s, all indexed")
        if profile:
            for line in summarize_profile(profile):
                log(line)
        hospital.tech.close()
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        server.failed = True
        log(f"{server.backend}: {scenario.name} FAILED: {result.error}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return result


# --- ceilings -------------------------------------------------------------------------------

RECEIVER = str(Path(__file__).with_name("receiver.py"))
STORESCP = "/usr/bin/storescp"


@dataclass
class Ceiling:
    """The same storescu clients and files sent to receivers that do nothing with what they
    receive: the most any gateway built on that receiver could reach on these cores."""

    name: str
    receiver: str  # "pynetdicom" (bench/receiver.py) or "storescp" (dcmtk)
    processes: int  # listening processes; associations are spread over them
    associations: int


CEILINGS = [
    Ceiling("ceiling: pynetdicom only, 1 process, 1 association", "pynetdicom", 1, 1),
    Ceiling("ceiling: pynetdicom only, 1 process, 4 associations", "pynetdicom", 1, 4),
    Ceiling("ceiling: pynetdicom only, 2 processes, 4 associations", "pynetdicom", 2, 4),
    Ceiling("ceiling: dcmtk storescp, 1 association", "storescp", 1, 1),
    Ceiling("ceiling: dcmtk storescp, 4 associations", "storescp", 1, 4),
]


def ceilings(only: str = "") -> list[Ceiling]:
    return [c for c in CEILINGS if only.lower() in c.name.lower()]


@contextlib.contextmanager
def receivers(ceiling: Ceiling, folder: Path) -> Iterator[tuple[list[int], list[int]]]:
    """The ceiling's listening processes on free ports; yields (ports, pids)."""
    env = {**os.environ, "TCP_NODELAY": "1"}  # dcmtk's switch; pynetdicom's is in listen()
    procs: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    try:
        for k in range(ceiling.processes):
            port, out = free_port(), folder / f"receive-{k}"
            out.mkdir(parents=True)
            if ceiling.receiver == "pynetdicom":
                cmd = [sys.executable, RECEIVER, "--port", str(port), "--dir", str(out)]
            else:
                # --fork: a process per association; without it storescp takes them in turn.
                cmd = [STORESCP, "--fork", "-aet", CALLED_AE, "-od", str(out), str(port)]
            proc = subprocess.Popen(
                cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            procs.append(proc)
            ports.append(port)

            def listening(proc: subprocess.Popen[bytes] = proc, port: int = port) -> bool:
                if proc.poll() is not None:
                    raise RuntimeError(f"{ceiling.receiver} exited with {proc.returncode}")
                return port_open(port)

            wait_until(listening, 60, f"{ceiling.receiver} to listen")
        yield ports, [p.pid for p in procs]
    finally:
        stop_processes(procs)


def run_ceiling(ceiling: Ceiling, phantom: Phantom, work: Path) -> Result:
    n = len(phantom.datasets)
    result = Result(ceiling.name, "-", n, kind="ceiling")
    folder = work / f"ceiling-{secrets.token_hex(3)}"
    try:
        tag = f"CEILING{secrets.token_hex(4)}"
        groups = phantom.write(folder / "send", "CEILING", tag, ceiling.associations)
        with receivers(ceiling, folder) as (ports, pids):

            def used() -> float:
                return sum(tree_cpu(pid) + reaped_cpu(pid) for pid in pids)

            log(f"{ceiling.name} ...")
            cpu_before, client_before = used(), client_cpu()
            seconds, per_association = send_storescu(ports, "BENCHCEILING", groups)
            client_after = client_cpu()
            time.sleep(0.2)  # storescp's per-association processes end after the release
            result.server_cpu = used() - cpu_before
        result.client_cpu = client_after - client_before
        result.seconds, result.per_association = seconds, per_association
        if ceiling.receiver == "storescp":
            received = sum(1 for p in folder.glob("receive-*/*") if p.is_file())
            if received != n:
                raise RuntimeError(f"storescp wrote {received} of {n} files")
        log(f"{ceiling.name}: {n / seconds:.0f} instances/s")
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        log(f"{ceiling.name} FAILED: {result.error}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return result


# --- report ---------------------------------------------------------------------------------


def failure(r: Result) -> str:
    """A failed scenario's error, short enough for a table cell and without its separator."""
    return f"FAILED: {r.error[:120].replace('|', '/')}"


def per_association(rates: list[float]) -> str:
    """One association's rate, or the mean and the slowest of several."""
    if len(rates) > 1:
        return f"{sum(rates) / len(rates):.0f} (min {min(rates):.0f})"
    return f"{rates[0]:.0f}"


def ceiling_table(results: list[Result]) -> str:
    rows = [
        "| receiver | instances/s | per association | receiver CPU ms/instance "
        "| client CPU ms/instance |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.error or not r.seconds:
            rows.append(f"| {r.scenario} | {failure(r)} | | | |")
            continue
        ms = 1000 / r.instances
        rows.append(
            f"| {r.scenario.removeprefix('ceiling: ')} | {r.rate:.0f} "
            f"| {per_association(r.per_association)} "
            f"| {r.server_cpu * ms:.1f} | {r.client_cpu * ms:.1f} |"
        )
    return "\n".join(rows)


def table(results: list[Result]) -> str:
    rows = [
        "| scenario | backend | instances | seconds | instances/s | per association | target "
        "| met? |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        target = (
            f">= {STOW_TARGET:.0f}/s" if r.kind == "stow" else f">= {CSTORE_TARGET:.0f}/s/assoc"
        )
        if r.error:
            rows.append(
                f"| {r.scenario} | {r.backend} | {r.instances} | - | - | - | {target} "
                f"| {failure(r)} |"
            )
            continue
        per = per_association(r.per_association) if r.kind == "cstore" else "-"
        rows.append(
            f"| {r.scenario} | {r.backend} | {r.instances} | {r.seconds:.2f} | {r.rate:.0f} "
            f"| {per} | {target} | {'yes' if r.met else 'NO'} |"
        )
    return "\n".join(rows)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def cpu_table(results: list[Result]) -> str:
    rows = [
        "| scenario | backend | server CPU ms/instance (with its workers) "
        "| PostgreSQL CPU ms/instance | client CPU ms/instance | server CPU / wall |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.error or not r.seconds:
            continue
        ms = 1000 / r.instances
        pg = f"{r.database_cpu * ms:.1f}" if r.backend == "postgres" else "(in server)"
        rows.append(
            f"| {r.scenario} | {r.backend} | {r.server_cpu * ms:.1f} | {pg} "
            f"| {r.client_cpu * ms:.1f} | {100 * r.server_cpu / r.seconds:.0f}% |"
        )
    return "\n".join(rows)


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


# On 2026-12-06, a quiet day on this kind of machine.
REFERENCE_SPEED = "1.09 s on 2026-12-06"


def interpreter_speed() -> str:
    """Seconds this machine's Python takes for ``sum(range(10**8))``, one core's speed right now.
    The shared machines here ran 30-80% slower on some days than on others, with a load average
    near 0 all the same: this is what makes runs of different days comparable."""
    start = time.perf_counter()
    sum(range(10**8))
    return f"{time.perf_counter() - start:.2f} s"


def add_server_options(parser: argparse.ArgumentParser, set_example: str) -> None:
    """The options every server benchmark takes: which backends, the PostgreSQL and Redis to
    use, keeping the data directories, and server settings (``--set``)."""
    parser.add_argument(
        "--backends", default="embedded,postgres", help="comma-separated: embedded, postgres"
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "RADRELAY_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
        help="an existing database to connect to for CREATE/DROP DATABASE",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("RADRELAY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    parser.add_argument("--keep", action="store_true", help="keep the servers' data dirs")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="RADRELAY_X=VALUE",
        help=f"a server setting for this run (repeatable), e.g. {set_example}",
    )


def checked_backends(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """Checks ``--set`` and ``--backends`` (``parser.error`` on a mistake); the backends."""
    for item in args.set:
        name, sep, _ = item.partition("=")
        if not sep or not name.startswith("RADRELAY_"):
            parser.error(f"--set takes RADRELAY_NAME=VALUE, not {item!r}")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"embedded", "postgres"}
    if unknown:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    return backends


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--instances", type=int, default=500, help="instances per scenario")
    parser.add_argument("--size", type=int, default=512, help="rows and columns of each slice")
    parser.add_argument("--batch", type=int, default=50, help="instances per STOW-RS request")
    parser.add_argument("--quick", action="store_true", help="a small smoke run (40 x 128x128)")
    parser.add_argument(
        "--profile", type=Path, help="py-spy the server during each scenario; raw files go here"
    )
    parser.add_argument(
        "--only",
        default="",
        metavar="TEXT",
        help="run only the scenarios whose names contain TEXT, e.g. 'storescu' or '4 assoc'",
    )
    add_server_options(parser, "RADRELAY_INGEST_PROCESSES=4")
    args = parser.parse_args(argv)
    if not scenarios(args.batch, args.only) and not ceilings(args.only):
        parser.error(f"no scenario's name contains {args.only!r}")
    backends = checked_backends(parser, args)
    if args.quick:
        args.instances, args.size, args.batch = 40, 128, 10
    if args.instances % 4:
        parser.error("--instances must be a multiple of 4 (four associations)")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    # SIGTERM (e.g. a CI timeout) and SIGINT (even where a background shell ignores it) unwind
    # the same way, so the servers, the database and the files go.
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)

    import pydicom
    import pynetdicom

    results: list[Result] = []
    ceiling_results: list[Result] = []
    load_before = load_average()
    speed_before = interpreter_speed()
    instance_bytes = 0
    interrupted = False
    tmp = Path(tempfile.mkdtemp(prefix="radrelay-bench-"))
    try:
        log(f"generating {args.instances} CT slices of {args.size}x{args.size} ...")
        phantom = Phantom(args.instances, args.size)
        sample = tmp / "sample.dcm"
        phantom.datasets[0].save_as(sample, enforce_file_format=True)
        instance_bytes = sample.stat().st_size
        sample.unlink()
        for backend in backends if scenarios(args.batch, args.only) else []:
            try:
                log(f"{backend}: starting the server ...")
                with running_server(backend, tmp, args) as server:
                    admin = login(server, "admin", ADMIN_PASSWORD)
                    for scenario in scenarios(args.batch, args.only):
                        results.append(run_scenario(scenario, server, admin, phantom, tmp, args))
                    admin.close()
            except Exception as exc:
                log(f"{backend}: FAILED: {type(exc).__name__}: {exc}")
                for scenario in scenarios(args.batch, args.only):
                    if not any(
                        r.scenario == scenario.name and r.backend == backend for r in results
                    ):
                        results.append(
                            Result(
                                scenario.name,
                                backend,
                                args.instances,
                                kind=scenario.kind,
                                error=f"{type(exc).__name__}: {exc}",
                            )
                        )
        for ceiling in ceilings(args.only):
            ceiling_results.append(run_ceiling(ceiling, phantom, tmp))
    except KeyboardInterrupt as exc:
        interrupted = True
        log(f"interrupted ({exc or 'Ctrl-C'}); cleaned up, the table shows what ran")
    finally:
        if not args.keep:  # the servers' data dirs live under it
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"RadRelay ingest benchmark ({time.strftime('%Y-%m-%d %H:%M')})")
    print(
        f"- machine: {cores()} cores (nproc), {cpu_model()}; the server, its worker and the "
        "clients (httpx, storescu, pynetdicom) all run on these same cores"
    )
    print(
        f"- Python {platform.python_version()}, pydicom {pydicom.__version__}, "
        f"pynetdicom {pynetdicom.__version__}, {dcmtk_version()}"
    )
    print(
        f"- data: {args.instances} synthetic CT instances per scenario, {args.size}x{args.size} "
        f"16-bit, {instance_bytes / 1e6:.2f} MB each ({args.instances * instance_bytes / 1e6:.0f} "
        "MB); a new patient, study and hospital for every scenario"
    )
    print(
        "- embedded: SQLite, file storage, in-process jobs; postgres: PostgreSQL (fresh "
        "database) + Redis with a radrelay worker"
    )
    print(
        "- seconds: clients started to last response (all instances committed); per association:"
        " instances/s of each association (mean and slowest when several)"
    )
    print(
        f"- load average (1, 5, 15 min) before: {load_before}, after: {load_average()} "
        "(anything above 0 beyond this benchmark is other work competing for the cores)"
    )
    print(
        f"- interpreter speed, sum(range(10**8)): {speed_before} before, {interpreter_speed()} "
        f"after ({REFERENCE_SPEED})"
    )
    if results:
        print()
        print(table(results))
        print()
        print("CPU used per instance while each scenario ran (100% server CPU / wall = one core):")
        print()
        print(cpu_table(results))
    if ceiling_results:
        print()
        print(
            "Ceilings: the same storescu clients and files sent to receivers that answer success "
            "without doing anything with what they receive (no inspection, hashing, fsync or "
            "index); pynetdicom as the gateway sets it up (bench/receiver.py), each process "
            "taking its share of the associations; dcmtk's storescp writing each object to a "
            "file, a process per association:"
        )
        print()
        print(ceiling_table(ceiling_results))
    failed = [r for r in results + ceiling_results if r.error]
    if args.quick:
        print("\n(--quick: a smoke run; the numbers are not comparable with the targets)")
    if interrupted:
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
