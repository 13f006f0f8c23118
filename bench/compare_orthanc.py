"""RadRelay next to Orthanc: the same ingest and DICOMweb work against both, one table.

    bench/compare_orthanc.sh                  # the full run (runs this file in a private netns)
    bench/compare_orthanc.sh --quick          # smoke run: 40 x 128x128, 1,000 studies
    bench/compare_orthanc.sh --only reads --profile /tmp/prof

``compare_orthanc.sh`` installs Debian's ``orthanc`` and ``orthanc-dicomweb`` and runs this
file inside ``unshare --net --mount`` with only ``lo`` up and the host's PostgreSQL and Redis
sockets hidden; this file refuses to run anywhere else. It starts, side by side on loopback:

- RadRelay on its embedded default (SQLite, file storage, in-process jobs), as
  ``bench/ingest.py`` starts it (its ``Server``), with ``bench/dicomweb.py``'s settings (a
  study is ready 2 s after its last instance, sweep every second);
- Orthanc with Debian's defaults and a generated configuration: storage and SQLite index in a
  temporary directory, its own DICOM and HTTP ports, the DICOMweb plugin under ``/dicomweb/``
  (RadRelay's root, so the same URLs serve both), HTTP Basic auth for one known user, UTF-8 as
  its default encoding (so it answers Chinese names), and ``TCP_NODELAY=1`` in its environment
  (DCMTK's switch; ``--orthanc-packaged`` leaves it out, as Debian's service does).

Then the same work against both, in rounds that alternate which server goes first, each
measurement starting only when both servers (with RadRelay's jobs) are idle:

- ingest (``bench/ingest.py``'s scenarios, its phantom CT and clients): C-STORE with dcmtk
  ``storescu`` over 1 and 4 associations, STOW-RS of 50 instances per request; each a new study;
- filling: N one-instance studies (``bench/dicomweb.py``'s patients) by STOW-RS, 100 per request,
  3 clients, and one CT series (the phantom) for the reads;
- QIDO ``studies?PatientName=`` / ``PatientID=`` over the N studies, queries both servers answer
  alike (their answers are compared), series metadata of the CT, its frames (1 client, and 4
  clients each pulling the whole series), with ``bench/dicomweb.py``'s measuring functions.

The table gives both figures and the ratio, oriented so that > 1 means RadRelay is better, and
the server CPU per operation (RadRelay's ingest also until its deferred jobs are done).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import io
import json
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

import dicomweb as dw
import ingest as harness
from ingest import (
    ADMIN_PASSWORD,
    Hospital,
    Phantom,
    Server,
    cores,
    cpu_model,
    free_port,
    load_average,
    log,
    login,
    new_hospital,
    port_open,
    tree_cpu,
    wait_until,
)

ORTHANC_BIN = "/usr/sbin/Orthanc"
ORTHANC_USER = "bench"
DICOMWEB_ROOT = "/dicomweb/"  # RadRelay's; Orthanc's plugin is configured to the same

# Host services the namespace must not reach (TCP on loopback, and unix sockets).
HOST_SERVICES = {"PostgreSQL": 5432, "Redis": 6379}
HOST_SOCKETS = ["/run/postgresql/.s.PGSQL.5432", "/run/redis/redis-server.sock"]

# DCMTK, which Orthanc's DICOM server is built on, leaves Nagle's algorithm on unless this is
# set: each C-STORE response then waits for the sender's delayed ACK, about 20 instances/s per
# association. RadRelay's gateway sets TCP_NODELAY on its sockets, so Orthanc gets it too.
ORTHANC_ENV = {"TCP_NODELAY": "1"}

RADRELAY = "RadRelay"
ORTHANC = "Orthanc"


# --- isolation ------------------------------------------------------------------------------


def isolation() -> list[str]:
    """What shows that this process runs in a private network namespace with only loopback and
    without the host's PostgreSQL and Redis; raises when it does not."""
    problems: list[str] = []
    with contextlib.suppress(OSError):
        if os.readlink("/proc/self/ns/net") == os.readlink("/proc/1/ns/net"):
            problems.append("this is the host's network namespace")
    interfaces = [
        line.split(":", 1)[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]
    ]
    if interfaces != ["lo"]:
        problems.append(f"network interfaces {interfaces}, not only lo")
    for name, port in HOST_SERVICES.items():
        if port_open(port):
            problems.append(f"the host's {name} answers on 127.0.0.1:{port}")
    for path in HOST_SOCKETS:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
            s.settimeout(0.5)
            s.connect(path)
            problems.append(f"{path} accepts connections")
    if problems:
        raise SystemExit(
            "compare_orthanc.py runs inside bench/compare_orthanc.sh's private network namespace: "
            + "; ".join(problems)
        )
    return [
        f"network namespace {os.readlink('/proc/self/ns/net')}, interfaces: lo only",
        "host PostgreSQL (127.0.0.1:5432, /run/postgresql) and Redis (6379): unreachable",
    ]


# --- Orthanc ----------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when this driver dies, even by SIGKILL, so no Orthanc
    outlives a run (it would keep the namespace and its ports)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class Orthanc:
    """An Orthanc with the DICOMweb plugin, shaped like ``ingest.Server`` for the shared helpers
    (``url``, ``http_port``, ``dicom_port``, ``backend``, ``procs``, ``cpu()``, ``failed``)."""

    data_dir: Path
    plugin: str
    overrides: dict[str, object]
    env: dict[str, str]
    backend: str = "orthanc"
    http_port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    failed: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "orthanc.log"

    @property
    def auth(self) -> str:
        pair = f"{ORTHANC_USER}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def config(self) -> dict[str, object]:
        """Debian's defaults (Orthanc's built-in ones) but for what a second instance on this
        machine needs. RemoteAccessAllowed: Orthanc counts only 127.0.0.1 as local, and
        AuthenticationEnabled asks for the password from there as well."""
        storage = str(self.data_dir / "db")
        return {
            "Name": "bench",
            "StorageDirectory": storage,
            "IndexDirectory": storage,
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "RemoteAccessAllowed": True,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {ORTHANC_USER: self.password},
            "Plugins": [self.plugin],
            "DicomWeb": {"Enable": True, "Root": DICOMWEB_ROOT, "EnableWado": False},
            # Debian's Latin1 answers the Chinese names and descriptions with their characters
            # dropped ("张^伟" becomes "^"); with Utf8 Orthanc answers them as RadRelay does.
            "DefaultEncoding": "Utf8",
            **self.overrides,
        }

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "orthanc.json"
        path.write_text(json.dumps(self.config(), indent=2))
        self.procs["serve"] = subprocess.Popen(
            [ORTHANC_BIN, str(path)],
            env={**os.environ, **self.env},
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        serve = self.procs["serve"]

        def healthy() -> bool:
            if serve.poll() is not None:
                raise RuntimeError(f"Orthanc exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                r = httpx.get(f"{self.url}/system", headers={"Authorization": self.auth})
            except httpx.HTTPError:
                return False
            return r.status_code == 200

        wait_until(healthy, 60, "Orthanc to answer")
        wait_until(lambda: port_open(self.dicom_port), 30, "Orthanc's DICOM port")

    def get(self, path: str) -> dict:
        r = httpx.get(f"{self.url}{path}", headers={"Authorization": self.auth}, timeout=60)
        r.raise_for_status()
        return r.json()

    def instances(self) -> int:
        return int(self.get("/statistics")["CountInstances"])

    def cpu(self) -> dict[str, float]:
        return {"server": sum(tree_cpu(p.pid) for p in self.procs.values())}

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()


# --- the two targets --------------------------------------------------------------------------


@dataclass
class Target:
    """One server with what the scenarios need of it: a sender per ingest scenario, the
    hospital that holds the read data (RadRelay: one hospital and its technician, who reads
    through the hospital filter; Orthanc: its one user) and a count of what it stored."""

    name: str
    server: Server | Orthanc
    admin: httpx.Client | None = None  # RadRelay only
    reader: Hospital | None = None

    @property
    def token(self) -> str:
        assert self.reader is not None
        return self.reader.tech.headers["Authorization"]

    def sender(self) -> Hospital:
        if isinstance(self.server, Orthanc):
            tag = secrets.token_hex(4).upper()
            tech = httpx.Client(
                base_url=self.server.url, headers={"Authorization": self.server.auth}, timeout=300
            )
            return Hospital(f"O{tag}", f"BENCH{tag}", tech)
        assert self.admin is not None
        return new_hospital(self.server, self.admin)

    def stored(self, hospital: Hospital) -> int:
        """Instances stored so far: RadRelay's in the hospital's cases, Orthanc's all."""
        if isinstance(self.server, Orthanc):
            return self.server.instances()
        return harness.indexed_instances(hospital)


def server_cpu(server: Server | Orthanc) -> float:
    """CPU seconds so far of a server and its children (RadRelay's ingest pool)."""
    return sum(server.cpu().values())


def settle(targets: list[Target], timeout: float) -> None:
    """Until no RadRelay case is receiving and both servers have been idle for 3 s: RadRelay's
    case_ready and index_study jobs (and anything Orthanc does after a store) are done and
    compete with nothing measured."""
    deadline = dw.Deadline("waiting for idle servers", timeout)
    for t in targets:
        if isinstance(t.server, Server):
            assert t.admin is not None
            dw.wait_settled(t.server, t.admin, deadline)
    quiet = 0
    while quiet < 3:
        deadline.check()
        before = sum(server_cpu(t.server) for t in targets)
        time.sleep(1)
        after = sum(server_cpu(t.server) for t in targets)
        quiet = quiet + 1 if after - before < 0.1 else 0


# --- rows -------------------------------------------------------------------------------------


@dataclass
class Run(dw.Row):
    cpu_until_idle: float = 0.0  # server CPU seconds from the start until settled


@dataclass
class Line:
    """One row of the comparison: a measurement per target and round."""

    title: str
    kind: str  # "rate": higher is better, median of rounds; "latency": pooled p50/p95
    unit: str
    runs: dict[str, list[Run]] = field(default_factory=dict)
    note: str = ""

    def add(self, target: str, run: Run) -> Run:
        self.runs.setdefault(target, []).append(run)
        return run

    def error(self, target: str) -> str:
        return next((r.error for r in self.runs.get(target, []) if r.error), "")

    def value(self, target: str) -> float | None:
        runs = [r for r in self.runs.get(target, []) if not r.error and r.n]
        if not runs or self.error(target):
            return None
        if self.kind == "rate":
            return statistics.median(r.throughput for r in runs)
        return 1000 * dw.percentile([x for r in runs for x in r.latencies], 50)

    def p95(self, target: str) -> float | None:
        runs = [r for r in self.runs.get(target, []) if not r.error and r.latencies]
        if not runs:
            return None
        return 1000 * dw.percentile([x for r in runs for x in r.latencies], 95)

    def cell(self, target: str) -> str:
        if self.error(target):
            return "FAILED"
        value = self.value(target)
        if value is None:
            return "-"
        if self.kind == "latency":
            return f"{value:.1f} (p95 {self.p95(target):.1f})"
        rates = [r.throughput for r in self.runs[target] if r.n]
        spread = f" ({min(rates):.0f}-{max(rates):.0f})" if len(rates) > 1 else ""
        return f"{value:.0f}{spread}"

    def ratio(self) -> float | None:
        ours, theirs = self.value(RADRELAY), self.value(ORTHANC)
        if not ours or not theirs:
            return None
        return ours / theirs if self.kind == "rate" else theirs / ours

    def cpu(self, target: str, until_idle: bool = False) -> str:
        runs = [r for r in self.runs.get(target, []) if not r.error and r.n]
        n = sum(r.n for r in runs)
        if not n:
            return "-"
        used = sum(r.cpu_until_idle if until_idle else r.server_cpu for r in runs)
        return f"{1000 * used / n:.1f}"


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    targets: list[Target]
    lines: dict[str, Line] = field(default_factory=dict)
    samples: list[dw.QidoSample] = field(default_factory=list)

    def line(self, key: str, title: str, kind: str, unit: str) -> Line:
        return self.lines.setdefault(key, Line(title, kind, unit))

    def ordered(self, round_: int) -> list[Target]:
        """Rounds alternate which server goes first (page cache, the machine's other load)."""
        return self.targets if round_ % 2 == 0 else self.targets[::-1]

    @contextlib.contextmanager
    def phase(self, target: Target, run: Run) -> Iterator[Run]:
        """``dicomweb.Phase``: server CPU, an error kept in the run; py-spy on RadRelay only
        (Orthanc is C++: py-spy would see nothing)."""
        args = self.args if isinstance(target.server, Server) else argparse.Namespace(profile=None)
        with dw.Phase(target.server, run, args, []).run():  # type: ignore[arg-type]
            yield run

    def settle(self) -> None:
        settle(self.targets, self.args.ready_timeout)

    # ingest ---------------------------------------------------------------------------------

    def ingest(self, phantom: Phantom, work: Path) -> None:
        n = len(phantom.datasets)
        scenarios = [
            ("cstore1", "C-STORE storescu, 1 association", harness.storescu, 1),
            ("cstore4", "C-STORE storescu, 4 associations", harness.storescu, 4),
            ("stow", f"STOW-RS, {self.args.batch}/request, 1 client", harness.stow(1), 1),
        ]
        for round_ in range(self.args.rounds):
            for key, title, send, associations in scenarios:
                line = self.line(key, f"{title} ({n} x {self.args.size}^2 CT)", "rate", "inst/s")
                for target in self.ordered(round_):
                    self.ingest_one(target, line, send, associations, phantom, work, round_)

    def ingest_one(
        self,
        target: Target,
        line: Line,
        send: harness.Runner,
        associations: int,
        phantom: Phantom,
        work: Path,
        round_: int,
    ) -> None:
        n = len(phantom.datasets)
        run = line.add(
            target.name,
            Run(target.server.backend, f"{line.title} #{round_ + 1}", "-", unit="inst/s"),
        )
        folder = work / f"{target.server.backend}-{secrets.token_hex(3)}"
        hospital: Hospital | None = None
        try:
            hospital = target.sender()
            before = target.stored(hospital) if isinstance(target.server, Orthanc) else 0
            groups = phantom.write(
                folder, hospital.code, f"{hospital.code}:{line.title}", associations
            )
            cpu_before = server_cpu(target.server)
            with self.phase(target, run):
                run.seconds, _ = send(target.server, hospital, groups, self.args)  # type: ignore[arg-type]
                run.n = n
            if run.error:
                return
            # Acknowledged means stored: each server must show every instance at once.
            stored = target.stored(hospital) - before
            if stored != n:
                run.error = f"{stored} of {n} instances stored"
                return
            self.settle()
            run.cpu_until_idle = server_cpu(target.server) - cpu_before
        except (*dw.REQUEST_ERRORS, KeyError) as exc:
            run.error = f"{type(exc).__name__}: {exc}"
            log(f"{target.name}: {line.title} FAILED: {run.error}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            if hospital is not None:
                hospital.tech.close()

    # filling --------------------------------------------------------------------------------

    def fill(self, small: list[bytes], ct: dw.Series) -> None:
        line = self.line(
            "fill", f"STOW-RS {len(small)} one-instance studies (100/request, 3 clients)",
            "rate", "inst/s",
        )  # fmt: skip
        line.note = "filling"
        for target in self.targets:
            assert target.reader is not None
            run = line.add(target.name, Run(target.server.backend, line.title, "-", unit="inst/s"))
            cpu_before = server_cpu(target.server)
            with self.phase(target, run):
                deadline = dw.Deadline("sending the studies", 120 + len(small) / 10)
                run.seconds = dw.stow(target.server, target.token, small, 100, 3, deadline)  # type: ignore[arg-type]
                run.n = len(small)
            if run.error:
                raise RuntimeError(f"{target.name}: filling failed: {run.error}")
            t0 = time.perf_counter()
            self.settle()
            run.cpu_until_idle = server_cpu(target.server) - cpu_before
            log(f"{target.name}: idle {time.perf_counter() - t0:.0f}s after the last study")
        for target in self.targets:
            log(f"{target.name}: sending the {len(ct.parts)}-instance CT series for the reads ...")
            deadline = dw.Deadline("sending the CT series", 120 + len(ct.parts))
            dw.stow(target.server, target.token, ct.parts, 20, 2, deadline)  # type: ignore[arg-type]
            if isinstance(target.server, Server):
                assert target.reader is not None
                dw.described_instances(target.reader, ct, dw.Deadline("metadata", 900))
        self.settle()

    # reads ----------------------------------------------------------------------------------

    def reads(self, ct: dw.Series, queries: list[tuple[str, str]]) -> None:
        base = f"studies/{ct.study_uid}/series/{ct.series_uid}/instances"
        urls = [f"{DICOMWEB_ROOT}{base}/{sop}/frames/1" for sop in sop_uids(ct)]
        frame_bytes = self.args.size * self.args.size * 2
        studies = self.args.studies
        slices = len(ct.parts)
        measures: list[tuple[str, str, str, str, Callable[[Target, Run, dw.Deadline], None]]] = [
            (
                "qido", f"QIDO studies?PatientName= or PatientID=, {studies} studies", "latency",
                "ms", lambda t, r, d: measure_qido(t, queries, r, self.samples, d),
            ),
            (
                "metadata", f"WADO-RS series metadata, {slices} instances", "latency", "ms",
                lambda t, r, d: dw.measure_metadata(
                    t.server, t.token, ct, self.args.metadata, r, d  # type: ignore[arg-type]
                ),
            ),
            (
                "frames1", f"frames, 1 client, the whole series ({slices})", "rate", "MB/s",
                lambda t, r, d: dw.measure_frames(
                    t.server, t.token, urls, frame_bytes, 1, False, "http.client", r, d  # type: ignore[arg-type]
                ),
            ),
            (
                "frames4", f"frames, {self.args.clients} clients x the whole series", "rate",
                "MB/s", lambda t, r, d: dw.measure_frames(
                    t.server, t.token, urls, frame_bytes, self.args.clients, False,  # type: ignore[arg-type]
                    "http.client", r, d,
                ),
            ),
        ]  # fmt: skip
        for round_ in range(self.args.rounds):
            for key, title, kind, unit, measure in measures:
                line = self.line(key, title, kind, unit)
                for target in self.ordered(round_):
                    run = line.add(
                        target.name,
                        Run(target.server.backend, f"{title} #{round_ + 1}", "-", unit=unit),
                    )
                    with self.phase(target, run):
                        measure(target, run, dw.Deadline(title, self.args.phase_timeout))
                    self.settle()


def sop_uids(ct: dw.Series) -> list[str]:
    import pydicom

    return [
        str(pydicom.dcmread(io.BytesIO(part), stop_before_pixels=True).SOPInstanceUID)
        for part in ct.parts
    ]


def read_series(phantom: Phantom, work: Path) -> dw.Series:
    """The phantom once more, as one series both servers get byte for byte."""
    import pydicom

    paths = phantom.write(work / "read-ct", "READ", "read-ct", 1)[0]
    first = pydicom.dcmread(paths[0], stop_before_pixels=True)
    series = dw.Series(
        str(first.StudyInstanceUID),
        str(first.SeriesInstanceUID),
        [p.read_bytes() for p in paths],
    )
    shutil.rmtree(work / "read-ct", ignore_errors=True)
    return series


# QIDO as OHIF's study list asks it (dicomweb.QIDO_EXTRA), written out: Orthanc's DICOMweb
# plugin 1.7 does not decode percent-escapes in the query string (``Smith%5EJohn``, ``WANG%2A``
# and ``00081030%2C00080060`` match nothing or fail there), so the values go as they are, as a
# viewer that leaves ``^ * ,`` alone sends them; RadRelay reads both forms.
QIDO_EXTRA = "&limit=101&offset=0&includefield=00081030,00080060"


def qido_queries(data: dw.DataSet, n: int, seed: int) -> list[tuple[str, str]]:
    """(kind, query string) of queries both servers answer alike. Orthanc matches a person
    name as one string (no component groups: ``张^伟`` or ``张*`` find nothing there, and it has
    no ``fuzzymatching``), so every name query starts with the alphabetic group."""
    rng = random.Random(seed)
    chinese = [alpha for alpha, ideo in data.names if ideo]
    latin = [alpha for alpha, ideo in data.names if not ideo]
    kinds: list[tuple[str, Callable[[], str]]] = [
        ("pinyin family prefix (WANG*)", lambda: f"PatientName={rng.choice(dw.FAMILY)[0]}*"),
        ("whole pinyin name + * (ZHANG^WEI*)", lambda: f"PatientName={rng.choice(chinese)}*"),
        ("Latin name, exact (Smith^John)", lambda: f"PatientName={rng.choice(latin)}"),
        ("PatientID, exact", lambda: f"PatientID=BP{rng.randrange(len(data.names)):07d}"),
    ]
    queries = []
    for i in range(n):
        kind, query = kinds[i % len(kinds)]
        queries.append((kind, query() + QIDO_EXTRA))
    return queries


def measure_qido(
    target: Target,
    queries: list[tuple[str, str]],
    row: Run,
    samples: list[dw.QidoSample],
    deadline: dw.Deadline,
) -> None:
    """``dicomweb.measure_qido`` with the query strings sent as written."""
    with dw.client(target.server, target.token, Accept="application/dicom+json") as http:  # type: ignore[arg-type]
        for _, query in queries[:10]:  # warm-up: connection, statement caches
            dw.expect(http.get(f"{DICOMWEB_ROOT}studies?{query}"))
        started = time.perf_counter()
        for kind, query in queries:
            deadline.check()
            t0 = time.perf_counter()
            r = http.get(f"{DICOMWEB_ROOT}studies?{query}")
            took = time.perf_counter() - t0
            dw.expect(r)
            results = len(r.json())
            if results == 0:
                raise RuntimeError(f"no study matched {query.split('&')[0]!r}")
            row.latencies.append(took)
            samples.append(dw.QidoSample(target.server.backend, target.name, kind, took, results))
        row.seconds = time.perf_counter() - started
        row.n = len(row.latencies)


# --- report -----------------------------------------------------------------------------------


def table(lines: list[Line]) -> str:
    out = [
        "| row | unit | RadRelay | Orthanc | ratio (> 1: RadRelay better) | RadRelay at or above? "
        "| server CPU ms/op RadRelay | Orthanc |",
        "|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for line in lines:
        ratio = line.ratio()
        verdict = "-" if ratio is None else ("yes" if ratio >= 1 else "NO")
        if line.note:
            verdict += f" ({line.note})"
        unit = "ms, p50 (p95)" if line.kind == "latency" else f"{line.unit}, median (range)"
        cpu = line.cpu(RADRELAY)
        if line.kind == "rate" and line.unit == "inst/s":
            cpu += f" ({line.cpu(RADRELAY, until_idle=True)} until idle)"
        out.append(
            f"| {line.title} | {unit} | {line.cell(RADRELAY)} | {line.cell(ORTHANC)} "
            f"| {'-' if ratio is None else f'{ratio:.2f}'} | {verdict} | {cpu} "
            f"| {line.cpu(ORTHANC)} |"
        )
    return "\n".join(out)


def qido_table(samples: list[dw.QidoSample]) -> str:
    """By kind of query: latency on each server and whether both gave as many results."""
    out = [
        "| query | n | RadRelay p50 ms | Orthanc p50 ms | results RadRelay (mean) | Orthanc "
        "| same counts |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    by: dict[tuple[str, str], list[dw.QidoSample]] = {}
    for s in samples:
        by.setdefault((s.kind, s.who), []).append(s)
    for kind in dict.fromkeys(s.kind for s in samples):
        ours, theirs = by.get((kind, RADRELAY), []), by.get((kind, ORTHANC), [])
        if not ours or not theirs:
            continue
        same = sum(a.results == b.results for a, b in zip(ours, theirs, strict=False))
        out.append(
            f"| {kind} | {len(ours)} "
            f"| {1000 * dw.percentile([s.seconds for s in ours], 50):.1f} "
            f"| {1000 * dw.percentile([s.seconds for s in theirs], 50):.1f} "
            f"| {statistics.mean(s.results for s in ours):.1f} "
            f"| {statistics.mean(s.results for s in theirs):.1f} "
            f"| {same} of {min(len(ours), len(theirs))} |"
        )
    return "\n".join(out)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--instances", type=int, default=500, help="instances per ingest study")
    parser.add_argument("--size", type=int, default=512, help="rows and columns of the CT")
    parser.add_argument("--batch", type=int, default=50, help="instances per STOW-RS request")
    parser.add_argument("--studies", type=int, default=10_000, help="one-instance studies")
    parser.add_argument("--qido", type=int, default=100, help="QIDO queries per round")
    parser.add_argument("--metadata", type=int, default=10, help="metadata requests per round")
    parser.add_argument("--clients", type=int, default=4, help="parallel frame clients")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every measurement")
    parser.add_argument(
        "--only", default="ingest,reads", help="comma-separated: ingest, reads (reads fill first)"
    )
    parser.add_argument("--quick", action="store_true", help="40 x 128x128, 1,000 studies")
    parser.add_argument("--orthanc-plugin", required=True, help="libOrthancDicomWeb.so")
    parser.add_argument(
        "--orthanc-set",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="an Orthanc setting (repeatable), e.g. StorageAccessOnFind='\"Never\"'",
    )
    parser.add_argument(
        "--orthanc-packaged",
        action="store_true",
        help="run Orthanc's DICOM sockets as Debian's service does, without TCP_NODELAY=1",
    )
    parser.add_argument(
        "--orthanc-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for Orthanc (repeatable), e.g. TCP_NODELAY=1",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="RADRELAY_X=VALUE",
        help="a RadRelay setting (repeatable)",
    )
    parser.add_argument("--ready-timeout", type=float, default=900)
    parser.add_argument("--phase-timeout", type=float, default=300)
    parser.add_argument("--profile", type=Path, help="py-spy RadRelay during each measurement")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs and logs")
    args = parser.parse_args(argv)
    if args.quick:
        args.instances, args.size, args.batch, args.studies = 40, 128, 10, 1_000
        args.rounds, args.qido, args.metadata = 1, 40, 5
    if args.instances % 4:
        parser.error("--instances must be a multiple of 4 (four associations)")
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    if only - {"ingest", "reads"}:
        parser.error(f"--only takes ingest, reads, not {args.only}")
    overrides: dict[str, object] = {}
    for item in args.orthanc_set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--orthanc-set takes KEY=JSON, not {item!r}")
        overrides[key] = json.loads(value)
    for item in args.set:
        name, sep, _ = item.partition("=")
        if not sep or not name.startswith("RADRELAY_"):
            parser.error(f"--set takes RADRELAY_NAME=VALUE, not {item!r}")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        if not Path(harness.PY_SPY).exists():
            harness.PY_SPY = shutil.which("py-spy") or harness.PY_SPY
        if not Path(harness.PY_SPY).exists():
            parser.error("--profile needs py-spy (in the venv or on PATH)")
    orthanc_env = {} if args.orthanc_packaged else dict(ORTHANC_ENV)
    for item in args.orthanc_env:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--orthanc-env takes NAME=VALUE, not {item!r}")
        orthanc_env[name] = value
    isolated = isolation()

    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)

    import pydicom

    began = time.perf_counter()
    load_before = load_average()
    tmp = Path(tempfile.mkdtemp(prefix="radrelay-vs-orthanc-"))
    bench: Bench | None = None
    versions = "Orthanc ?"
    interrupted = False
    failed = False
    try:
        log(f"generating {args.instances} CT slices of {args.size}x{args.size} ...")
        phantom = Phantom(args.instances, args.size)
        for ds in phantom.datasets:
            # A name no QIDO query of the filling matches: Orthanc's user sees these studies
            # too, RadRelay's reader (another hospital) does not.
            ds.PatientName = "PHANTOM^CT"
        radrelay_env = harness.base_env(tmp / "radrelay")
        radrelay_env.update(item.split("=", 1) for item in dw.SERVER_DEFAULTS + args.set)
        radrelay = Server("radrelay", tmp / "radrelay", radrelay_env)
        orthanc = Orthanc(tmp / "orthanc", args.orthanc_plugin, overrides, orthanc_env)
        with contextlib.ExitStack() as stack:
            for server in (radrelay, orthanc):
                log(f"starting {server.backend} ...")
                stack.callback(server.stop)
                server.start()
            system, plugin = orthanc.get("/system"), orthanc.get("/plugins/dicom-web")
            versions = f"Orthanc {system['Version']}, DICOMweb plugin {plugin['Version']}"
            admin = login(radrelay, "admin", ADMIN_PASSWORD)
            ours = Target(RADRELAY, radrelay, admin)
            ours.reader = new_hospital(radrelay, admin)
            theirs = Target(ORTHANC, orthanc)
            theirs.reader = theirs.sender()
            bench = Bench(args, [ours, theirs])
            bench.settle()
            if "ingest" in only:
                bench.ingest(phantom, tmp)
            if "reads" in only:
                log(f"generating {args.studies} one-instance studies ...")
                data = dw.make_data(args.studies, 1, 16, 16)
                ct = read_series(phantom, tmp)
                bench.fill(data.small, ct)
                bench.reads(ct, qido_queries(data, args.qido, seed=7))
    except KeyboardInterrupt as exc:
        interrupted = True
        log(f"interrupted ({exc or 'Ctrl-C'}); the table shows what ran")
    except Exception as exc:
        failed = True
        log(f"FAILED: {type(exc).__name__}: {exc}")
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"RadRelay vs Orthanc ({time.strftime('%Y-%m-%d %H:%M')})")
    print(
        f"- machine: {cores()} cores (nproc), {cpu_model()}; both servers and all clients share "
        "them; only one server works at a time, the other idle"
    )
    print(f"- {versions}; Python {platform.python_version()}, pydicom {pydicom.__version__}")
    print(f"- isolation: {'; '.join(isolated)}")
    print(
        "- RadRelay: embedded default (SQLite, file storage, in-process jobs), settings "
        + ", ".join(dw.SERVER_DEFAULTS + args.set)
    )
    print(
        "- Orthanc: Debian defaults (SQLite index, SyncStorageArea) but DefaultEncoding Utf8, "
        f"DICOMweb plugin at {DICOMWEB_ROOT}, HTTP Basic auth; environment "
        + (" ".join(f"{k}={v}" for k, v in orthanc_env.items()) or "as Debian's service")
        + (f"; overrides {json.dumps(overrides)}" if overrides else "")
    )
    print(
        f"- ingest: {args.instances} x {args.size}x{args.size} 16-bit CT per study, a new study "
        f"each time; {args.rounds} round(s), alternating which server goes first; "
        "rates: median of the rounds; latencies: pooled"
    )
    print(
        f"- load average (1, 5, 15 min) before: {load_before}, after: {load_average()}; "
        f"the run took {time.perf_counter() - began:.0f}s"
    )
    print()
    if bench is not None:
        print(table(list(bench.lines.values())))
        if bench.samples:
            print()
            print("QIDO by kind of query (the same queries on both; limit=101):")
            print()
            print(qido_table(bench.samples))
        failed = failed or any(
            r.error for line in bench.lines.values() for rs in line.runs.values() for r in rs
        )
    if args.quick:
        print("\n(--quick: a smoke run; the numbers say little)")
    if interrupted:
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
