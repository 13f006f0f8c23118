"""DICOMweb read side: QIDO-RS, series metadata, frames and rendered frames of a real
``radrelay serve``, printed as a table.

    .venv/bin/python bench/dicomweb.py            # 10,000 studies + a 500-slice CT, both backends
    .venv/bin/python bench/dicomweb.py --quick    # 1,000 studies + a 100-slice CT
    .venv/bin/python bench/dicomweb.py --backends embedded --profile /tmp/prof

The servers are started as ``bench/ingest.py`` starts them (its harness is imported): a fresh
data dir, on ``postgres`` a new PostgreSQL database and a Redis queue name with a
``radrelay worker`` beside the server. One hospital and its technician; everything is sent by
STOW-RS as that technician:

1. N small studies (one 16x16 CT instance each; varied Chinese and Latin patients: 20 Chinese
   family names x 24 given names, written as ``ZHANG^WEI=张^伟`` in GB18030, GBK or UTF-8, and 15
   x 10 Latin names), requests of 100 instances, 3 concurrent clients;
2. one CT series of 500 slices of 512x512 16-bit, requests of 20 instances.

The server runs with a stable age of 2 s (a study becomes a ready case 2 s after its last
instance) and its ``index_study`` job then stores every object's metadata. After each of the
two sendings the benchmark waits until no case is receiving and the server (with its worker and
PostgreSQL) has been idle for 3 s, so that background jobs compete neither with the CT's
sending nor with the measurements; after the CT, also until its instances all carry
BitsAllocated in QIDO (present only once the metadata is stored). Then,
with one HTTP/1.1 keep-alive client per worker, latencies measured at the client (request sent
to body received):

- QIDO ``GET /dicomweb/studies?PatientName=...`` as OHIF's study list asks it (``limit=101``,
  ``includefield=00081030,00080060``), a mix of exact names (pinyin or ideographic group),
  ideographic prefixes (``张*``), pinyin prefixes (``WANG*``) and ``fuzzymatching=true`` on a
  given name, sequentially, as the technician and as the admin;
- series metadata, sequentially;
- frames ``.../instances/{sop}/frames/1`` as stored (``transfer-syntax=*``) by 4 parallel
  clients: each pulling the whole series (4 viewers), then splitting it (one viewer, 4
  connections), then each the whole series again with ``http.client`` instead of httpx (a
  cheaper client leaves more of the cores to the server); aggregate MB/s of frame payload;
- rendered frames ``.../frames/1/rendered`` as JPEG, sequentially, each a different instance.

Clients and the server share this machine's cores. Targets are reported, never asserted; the
exit status is non-zero only when a phase failed (errors, wrong answers, a phase timeout).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException
from pathlib import Path

import httpx

import ingest as harness
from ingest import (
    ADMIN_PASSWORD,
    Hospital,
    Server,
    add_server_options,
    checked_backends,
    cores,
    cpu_model,
    interpreter_speed,
    load_average,
    log,
    login,
    new_hospital,
    profiled,
    running_server,
    summarize_profile,
)

# Targets on a 2-core machine.
QIDO_P95_MS = 30.0
METADATA_P95_MS = 150.0
FRAMES_MB_S = 200.0
RENDERED_P95_MS = 40.0

# The server settings this benchmark needs; --set overrides them.
SERVER_DEFAULTS = [
    "RADRELAY_STABLE_AGE_SECONDS=2",
    # 500 cases per sweep: with the default 5 s, 10,000 one-instance studies queue up.
    "RADRELAY_SWEEP_INTERVAL_SECONDS=1",
    # The run outlasts the default 15-minute access token.
    "RADRELAY_ACCESS_TOKEN_MINUTES=240",
]

FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
QIDO_EXTRA = {"limit": "101", "offset": "0", "includefield": "00081030,00080060"}

# (pinyin, hanzi): the common family and given names, so that a prefix matches many patients.
FAMILY = [
    ("ZHANG", "张"), ("WANG", "王"), ("LI", "李"), ("LIU", "刘"), ("CHEN", "陈"),
    ("YANG", "杨"), ("HUANG", "黄"), ("ZHAO", "赵"), ("WU", "吴"), ("ZHOU", "周"),
    ("XU", "徐"), ("SUN", "孙"), ("MA", "马"), ("ZHU", "朱"), ("HU", "胡"),
    ("GUO", "郭"), ("HE", "何"), ("GAO", "高"), ("LIN", "林"), ("LUO", "罗"),
]  # fmt: skip
GIVEN = [
    ("WEI", "伟"), ("FANG", "芳"), ("NA", "娜"), ("XIUYING", "秀英"), ("MIN", "敏"),
    ("JING", "静"), ("LI", "丽"), ("QIANG", "强"), ("LEI", "磊"), ("JUN", "军"),
    ("YANG", "洋"), ("YONG", "勇"), ("YAN", "艳"), ("JIE", "杰"), ("JUAN", "娟"),
    ("TAO", "涛"), ("MING", "明"), ("CHAO", "超"), ("XIULAN", "秀兰"), ("XIA", "霞"),
    ("PING", "平"), ("GANG", "刚"), ("GUIYING", "桂英"), ("HUA", "华"),
]  # fmt: skip
LATIN_FAMILY = [
    "Smith", "Garcia", "Muller", "Okafor", "Tanaka", "Rossi", "Novak", "Silva",
    "Kowalski", "Dubois", "Jensen", "Murphy", "Nguyen", "Kim", "Cohen",
]  # fmt: skip
LATIN_GIVEN = ["John", "Maria", "Anna", "Chidi", "Yuki", "Paul", "Sofia", "Omar", "Elena", "David"]
CHINESE_CHARSETS = ["GB18030", "GBK", "ISO_IR 192"]


class PhaseTimeout(RuntimeError):
    pass


# What a failed request raises (wrong answers are RuntimeErrors).
REQUEST_ERRORS = (RuntimeError, OSError, ValueError, httpx.HTTPError, HTTPException)


class Deadline:
    """A phase's time limit, checked between requests (each request has its own timeout)."""

    def __init__(self, what: str, seconds: float):
        self.what, self.seconds = what, seconds
        self.end = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise PhaseTimeout(f"{self.what}: not done after {self.seconds:.0f}s")


# --- data -----------------------------------------------------------------------------------


@dataclass
class Series:
    study_uid: str
    series_uid: str
    parts: list[bytes]  # Part 10 files, in instance order


@dataclass
class DataSet:
    small: list[bytes]  # one-instance studies
    names: list[tuple[str, str]]  # (alphabetic, ideographic or "") of the patients
    ct: Series


def make_data(studies: int, slices: int, size: int, small_size: int) -> DataSet:
    from radrelay import synth

    rng = random.Random(20260101)
    small: list[bytes] = []
    names: list[tuple[str, str]] = []
    for i in range(studies):
        if rng.random() < 0.8:
            (fam, fam_h), (giv, giv_h) = rng.choice(FAMILY), rng.choice(GIVEN)
            name, charset = f"{fam}^{giv}={fam_h}^{giv_h}", rng.choice(CHINESE_CHARSETS)
            names.append((f"{fam}^{giv}", f"{fam_h}^{giv_h}"))
        else:
            name, charset = f"{rng.choice(LATIN_FAMILY)}^{rng.choice(LATIN_GIVEN)}", "ISO_IR 192"
            names.append((name, ""))
        patient = synth.SynthPatient(
            name=name,
            patient_id=f"BP{i:07d}",
            birth_date=f"{rng.randrange(1940, 2020)}{rng.randrange(1, 13):02d}15",
            sex=rng.choice("MF"),
        )
        for ds in synth.study(
            "CT", seed=i + 1, slices=1, size=small_size, charset=charset, synth_patient=patient
        ):
            small.append(synth.encode(ds))
    ct_parts: list[bytes] = []
    study_uid = series_uid = ""
    for ds in synth.study("CT", seed=10**7, slices=slices, size=size, hospital="BIGCT"):
        study_uid, series_uid = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
        ct_parts.append(synth.encode(ds))
    return DataSet(small, names, Series(study_uid, series_uid, ct_parts))


def multipart(parts: Sequence[bytes]) -> tuple[bytes, str]:
    boundary = f"radrelay-bench-{uuid.uuid4().hex}"
    chunks: list[bytes] = []
    for part in parts:
        chunks += [
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(),
            part,
            b"\r\n",
        ]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f'multipart/related; type="application/dicom"; boundary={boundary}'


# --- measuring ------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Row:
    backend: str
    metric: str
    target: str  # as printed
    check: Callable[[Row], bool] | None = None  # None: no target
    n: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds
    seconds: float = 0.0  # wall time of the measured loop
    payload: int = 0  # bytes of frame payload
    unit: str = "req/s"  # throughput unit: req/s, MB/s, inst/s
    server_cpu: float = 0.0  # seconds, serve + worker + PostgreSQL backends
    client_cpu: float = 0.0  # seconds, this process (all its client threads)
    error: str = ""

    @property
    def p50(self) -> float:
        return 1000 * percentile(self.latencies, 50)

    @property
    def p95(self) -> float:
        return 1000 * percentile(self.latencies, 95)

    @property
    def throughput(self) -> float:
        if not self.seconds:
            return 0.0
        if self.unit == "MB/s":
            return self.payload / 1e6 / self.seconds
        return self.n / self.seconds

    @property
    def verdict(self) -> str:
        if self.error:
            return "FAILED: " + self.error[:140].replace("|", "/")
        if self.check is None:
            return "-"
        return "pass" if self.check(self) else "MISS"


def p95_below(ms: float) -> Callable[[Row], bool]:
    return lambda row: row.p95 < ms


def client_cpu() -> float:
    t = os.times()
    return t.user + t.system


def total_cpu(server: Server) -> float:
    return sum(server.cpu().values())


class Phase:
    """Runs one measurement: server CPU, optional py-spy profile, a failure becomes the row's
    error (the other phases still run)."""

    def __init__(self, server: Server, row: Row, args: argparse.Namespace, rows: list[Row]):
        self.server, self.row, self.args = server, row, args
        rows.append(row)

    @contextlib.contextmanager
    def run(self) -> Iterator[Row]:
        profile = None
        if self.args.profile:
            slug = "".join(c if c.isalnum() else "-" for c in self.row.metric.lower())
            profile = self.args.profile / f"{self.server.backend}-{slug}.txt"
        log(f"{self.server.backend}: {self.row.metric} ...")
        try:
            with profiled(self.server.procs["serve"].pid, profile):
                before, client_before = self.server.cpu(), client_cpu()
                yield self.row
                client_after, after = client_cpu(), self.server.cpu()
            self.row.server_cpu = sum(max(0.0, v - before.get(k, 0.0)) for k, v in after.items())
            self.row.client_cpu = client_after - client_before
            r = self.row
            if r.latencies:
                log(
                    f"{self.server.backend}: {r.metric}: n={r.n} p50 {r.p50:.1f} ms "
                    f"p95 {r.p95:.1f} ms, {r.throughput:.1f} {r.unit}"
                )
            else:
                log(f"{self.server.backend}: {r.metric}: {r.throughput:.1f} {r.unit}")
            if profile:
                for line in summarize_profile(profile):
                    log(line)
        except PhaseTimeout as exc:
            self.row.error = str(exc)
            self.server.failed = True
            log(f"{self.server.backend}: {self.row.metric} FAILED: {exc}")
        except (*REQUEST_ERRORS, KeyError, AssertionError) as exc:
            self.row.error = f"{type(exc).__name__}: {exc}"
            self.server.failed = True
            log(f"{self.server.backend}: {self.row.metric} FAILED: {self.row.error}")


def client(server: Server, token: str, **headers: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": token, **headers},
        timeout=60,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


def expect(r: httpx.Response, status: int = 200) -> httpx.Response:
    if r.status_code != status:
        raise RuntimeError(
            f"{r.request.method} {r.request.url.path}: HTTP {r.status_code} {r.text[:300]}"
        )
    return r


# --- phases ---------------------------------------------------------------------------------


def stow(
    server: Server,
    token: str,
    parts: list[bytes],
    batch: int,
    clients: int,
    deadline: Deadline,
) -> float:
    """Sends ``parts`` by STOW-RS, ``batch`` per request, from ``clients`` threads; every part
    must be referenced and none failed. Returns the seconds taken."""
    bodies = [multipart(parts[i : i + batch]) for i in range(0, len(parts), batch)]
    problems: list[str] = []
    stop = threading.Event()

    def send(k: int) -> None:
        with client(server, token, Accept="application/dicom+json") as http:
            for (body, ctype), n in [
                (b, len(parts[i * batch : (i + 1) * batch]))
                for i, b in enumerate(bodies)
                if i % clients == k
            ]:
                if stop.is_set():
                    return
                try:
                    deadline.check()
                    r = http.post(
                        "/dicomweb/studies",
                        content=body,
                        headers={"Content-Type": ctype},
                        timeout=300,
                    )
                    expect(r)
                    answer = r.json()
                    failed = answer.get("00081198", {}).get("Value", [])
                    stored = answer.get("00081199", {}).get("Value", [])
                    if failed or len(stored) != n:
                        raise RuntimeError(
                            f"STOW-RS stored {len(stored)} of {n}, {len(failed)} failed: "
                            f"{json.dumps(failed)[:300]}"
                        )
                except REQUEST_ERRORS as exc:
                    problems.append(f"{type(exc).__name__}: {exc}")
                    stop.set()
                    return

    threads = [threading.Thread(target=send, args=(k,), daemon=True) for k in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if problems:
        raise RuntimeError(problems[0])
    return time.perf_counter() - started


def wait_settled(server: Server, admin: httpx.Client, deadline: Deadline) -> None:
    """Until no case is receiving and the server (with its worker and PostgreSQL) has been idle
    for 3 s: the case_ready and index_study jobs are done and compete with nothing measured."""
    while True:
        deadline.check()
        r = expect(admin.get("/api/cases", params={"status": "receiving", "limit": 1}))
        if r.json()["total"] == 0:
            break
        time.sleep(1)
    quiet = 0
    while quiet < 3:
        deadline.check()
        before = total_cpu(server)
        time.sleep(1)
        quiet = quiet + 1 if total_cpu(server) - before < 0.1 else 0


def described_instances(hospital: Hospital, ct: Series, deadline: Deadline) -> list[dict]:
    """The CT series' instances (QIDO results, in instance order) once all carry BitsAllocated,
    which QIDO returns only when the object's metadata is stored."""
    url = f"/dicomweb/studies/{ct.study_uid}/series/{ct.series_uid}/instances"
    while True:
        deadline.check()
        instances = expect(hospital.tech.get(url, params={"limit": 1000})).json()
        described = [i for i in instances if i.get("00280100", {}).get("Value")]
        if len(instances) == len(ct.parts) and len(described) == len(instances):
            return sorted(instances, key=lambda i: int(i["00200013"]["Value"][0]))
        time.sleep(1)


def qido_queries(data: DataSet, n: int, seed: int) -> list[tuple[str, dict[str, str]]]:
    """(kind, params) of ``n`` queries, the four kinds in turn."""
    rng = random.Random(seed)
    chinese = [nm for nm in data.names if nm[1]]
    queries: list[tuple[str, dict[str, str]]] = []
    for i in range(n):
        kind = ("exact", "ideographic prefix 张*", "pinyin prefix WANG*", "fuzzy given name")[i % 4]
        if kind == "exact":
            alpha, ideo = rng.choice(data.names)
            value = ideo if ideo and rng.random() < 0.5 else alpha
            params = {"PatientName": value, "fuzzymatching": "false"}
        elif kind.startswith("ideographic"):
            params = {"PatientName": rng.choice(chinese)[1][0] + "*", "fuzzymatching": "false"}
        elif kind.startswith("pinyin"):
            params = {"PatientName": rng.choice(FAMILY)[0] + "*", "fuzzymatching": "false"}
        else:
            params = {"PatientName": rng.choice(GIVEN)[0].lower(), "fuzzymatching": "true"}
        queries.append((kind, {**params, **QIDO_EXTRA}))
    return queries


@dataclass
class QidoSample:
    backend: str
    who: str
    kind: str
    seconds: float
    results: int


def measure_qido(
    server: Server,
    token: str,
    who: str,
    queries: list[tuple[str, dict[str, str]]],
    row: Row,
    samples: list[QidoSample],
    deadline: Deadline,
) -> None:
    with client(server, token, Accept="application/dicom+json") as http:
        for _, params in queries[:10]:  # warm-up: connection, statement caches
            expect(http.get("/dicomweb/studies", params=params))
        started = time.perf_counter()
        for kind, params in queries:
            deadline.check()
            t0 = time.perf_counter()
            r = http.get("/dicomweb/studies", params=params)
            took = time.perf_counter() - t0
            expect(r)
            results = len(r.json())
            if results == 0:
                raise RuntimeError(f"no study matched {params['PatientName']!r}")
            row.latencies.append(took)
            samples.append(QidoSample(server.backend, who, kind, took, results))
        row.seconds = time.perf_counter() - started
        row.n = len(row.latencies)


def measure_metadata(
    server: Server, token: str, ct: Series, n: int, row: Row, deadline: Deadline
) -> None:
    url = f"/dicomweb/studies/{ct.study_uid}/series/{ct.series_uid}/metadata"
    with client(server, token, Accept="application/dicom+json") as http:
        t0 = time.perf_counter()
        first = expect(http.get(url))
        log(
            f"{server.backend}: first metadata request {1000 * (time.perf_counter() - t0):.0f} ms,"
            f" {len(first.content) / 1e6:.2f} MB"
        )
        documents = first.json()
        if len(documents) != len(ct.parts) or not all("7FE00010" in d for d in documents):
            raise RuntimeError(f"metadata of {len(documents)} instances, not {len(ct.parts)}")
        started = time.perf_counter()
        for _ in range(n):
            deadline.check()
            t0 = time.perf_counter()
            r = http.get(url)
            took = time.perf_counter() - t0
            expect(r)
            if len(r.content) != len(first.content):
                raise RuntimeError("the metadata changed between two requests")
            row.latencies.append(took)
        row.seconds = time.perf_counter() - started
        row.n = n


def frame_payload(content_type: str, body: bytes) -> int:
    """Bytes of the one part of a multipart/related frame response."""
    if not content_type.startswith("multipart/related") or "boundary=" not in content_type:
        raise RuntimeError(f"a frame came as {content_type!r}")
    boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip('"')
    start = body.index(b"\r\n\r\n") + 4
    end = body.rindex(b"\r\n--" + boundary.encode())
    return end - start


class FrameClient:
    """One keep-alive connection pulling frames: httpx, as everywhere else here, or the
    standard library's http.client, which costs the client about a seventh of httpx's CPU per
    0.5 MB frame (httpx/h11 copy the body in 64 KiB steps), so more of the cores go to the
    server."""

    def __init__(self, server: Server, token: str, kind: str):
        self.kind = kind
        self.headers = {"Authorization": token, "Accept": FRAME_ACCEPT}
        if kind == "httpx":
            self.http = client(server, token, Accept=FRAME_ACCEPT)
        else:
            self.conn = HTTPConnection("127.0.0.1", server.http_port, timeout=60)

    def get(self, url: str) -> tuple[int, str, bytes]:
        if self.kind == "httpx":
            r = self.http.get(url)
            return r.status_code, r.headers.get("content-type", ""), r.content
        self.conn.request("GET", url, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        return response.status, response.getheader("content-type", ""), body

    def close(self) -> None:
        if self.kind == "httpx":
            self.http.close()
        else:
            self.conn.close()


def measure_frames(
    server: Server,
    token: str,
    urls: list[str],
    frame_bytes: int,
    clients: int,
    split: bool,
    kind: str,
    row: Row,
    deadline: Deadline,
) -> None:
    if split:
        # One viewer with several connections: each takes every k-th frame.
        plans = [urls[k::clients] for k in range(clients)]
    else:
        # Several viewers opening the series, each starting at a different place.
        plans = [
            urls[k * len(urls) // clients :] + urls[: k * len(urls) // clients]
            for k in range(clients)
        ]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    payload = [0] * clients
    problems: list[str] = []
    stop = threading.Event()
    barrier = threading.Barrier(clients + 1, timeout=120)

    def fetch(conn: FrameClient, url: str) -> int:
        status, content_type, body = conn.get(url)
        if status != 200:
            raise RuntimeError(f"GET {url}: HTTP {status} {body[:300]!r}")
        size = frame_payload(content_type, body)
        if size != frame_bytes:
            raise RuntimeError(f"a frame of {size} bytes, not {frame_bytes}")
        return size

    def pull(k: int) -> None:
        conn = FrameClient(server, token, kind)
        try:
            try:
                fetch(conn, plans[k][0])  # connect before the clock starts
            except REQUEST_ERRORS as exc:
                problems.append(f"{type(exc).__name__}: {exc}")
                stop.set()
            barrier.wait()
            for url in plans[k]:
                if stop.is_set():
                    return
                try:
                    deadline.check()
                    t0 = time.perf_counter()
                    size = fetch(conn, url)
                    took = time.perf_counter() - t0
                except REQUEST_ERRORS as exc:
                    problems.append(f"{type(exc).__name__}: {exc}")
                    stop.set()
                    return
                latencies[k].append(took)
                payload[k] += size
        finally:
            conn.close()

    threads = [threading.Thread(target=pull, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    row.seconds = time.perf_counter() - started
    if problems:
        raise RuntimeError(problems[0])
    row.latencies = [x for per in latencies for x in per]
    row.n, row.payload = len(row.latencies), sum(payload)


def measure_rendered(
    server: Server, token: str, urls: list[str], n: int, size: int, row: Row, deadline: Deadline
) -> None:
    from PIL import Image

    # Each request a different instance (nothing is cached server-side, but be fair anyway).
    step = max(1, len(urls) // n)
    chosen = [urls[(i * step) % len(urls)] + "/rendered" for i in range(n)]
    with client(server, token, Accept="image/jpeg") as http:
        first = expect(http.get(urls[-1] + "/rendered"))
        image = Image.open(io.BytesIO(first.content))
        if image.format != "JPEG" or image.size != (size, size):
            raise RuntimeError(f"rendered as {image.format} {image.size}, not JPEG {size}x{size}")
        started = time.perf_counter()
        for url in chosen:
            deadline.check()
            t0 = time.perf_counter()
            r = http.get(url)
            took = time.perf_counter() - t0
            expect(r)
            if not r.content.startswith(b"\xff\xd8"):
                raise RuntimeError("a rendered frame is not a JPEG")
            row.latencies.append(took)
        row.seconds = time.perf_counter() - started
        row.n = n


# --- one backend ----------------------------------------------------------------------------


def run_backend(
    backend: str,
    data: DataSet,
    tmp: Path,
    args: argparse.Namespace,
    rows: list[Row],
    qido_samples: list[QidoSample],
) -> None:
    studies, slices = len(data.small), len(data.ct.parts)
    log(f"{backend}: starting the server ...")
    with running_server(backend, tmp, args) as server:
        admin = login(server, "admin", ADMIN_PASSWORD)
        hospital = new_hospital(server, admin)
        tech_token = hospital.tech.headers["Authorization"]
        admin_token = admin.headers["Authorization"]

        stow_row = Row(
            backend,
            f"STOW-RS {studies} one-instance studies (100/req, 3 clients)",
            "-",
            unit="inst/s",
        )
        with Phase(server, stow_row, args, rows).run():
            deadline = Deadline("sending the studies", 120 + studies / 10)
            stow_row.seconds = stow(server, tech_token, data.small, 100, 3, deadline)
            stow_row.n = studies
        if stow_row.error:
            raise RuntimeError(stow_row.error)
        log(f"{backend}: waiting for the cases, their jobs and a quiet server ...")
        t0 = time.perf_counter()
        wait_settled(server, admin, Deadline("waiting for the cases", args.ready_timeout))
        log(f"{backend}: settled {time.perf_counter() - t0:.0f}s after the last instance")

        ct_row = Row(
            backend,
            f"STOW-RS CT series of {slices} x {args.size}x{args.size} (20/req, 2 clients)",
            "-",
            unit="inst/s",
        )
        with Phase(server, ct_row, args, rows).run():
            deadline = Deadline("sending the CT series", 120 + slices)
            ct_row.seconds = stow(server, tech_token, data.ct.parts, 20, 2, deadline)
            ct_row.n = slices
        if ct_row.error:
            raise RuntimeError(ct_row.error)
        log(f"{backend}: waiting for the CT series' metadata and a quiet server ...")
        t0 = time.perf_counter()
        deadline = Deadline("waiting for the CT series' metadata", args.ready_timeout)
        instances = described_instances(hospital, data.ct, deadline)
        log(f"{backend}: metadata stored {time.perf_counter() - t0:.0f}s after the last instance")
        wait_settled(server, admin, deadline)
        total = expect(hospital.tech.get("/api/cases", params={"limit": 1})).json()["total"]
        if total != studies + 1:
            raise RuntimeError(f"the technician sees {total} cases, not {studies + 1}")

        queries = qido_queries(data, args.qido, seed=7)
        for who, token in (("tech", tech_token), ("admin", admin_token)):
            row = Row(
                backend,
                f"QIDO studies?PatientName=, {studies} studies, as {who}",
                f"p95 < {QIDO_P95_MS:.0f} ms",
                p95_below(QIDO_P95_MS),
            )
            with Phase(server, row, args, rows).run():
                deadline = Deadline(row.metric, args.phase_timeout)
                measure_qido(server, token, who, queries, row, qido_samples, deadline)

        row = Row(
            backend,
            f"series metadata, {slices} instances, warm",
            f"p95 < {METADATA_P95_MS:.0f} ms",
            p95_below(METADATA_P95_MS),
        )
        with Phase(server, row, args, rows).run():
            deadline = Deadline(row.metric, args.phase_timeout)
            measure_metadata(server, tech_token, data.ct, args.metadata, row, deadline)

        base = f"/dicomweb/studies/{data.ct.study_uid}/series/{data.ct.series_uid}/instances"
        urls = [f"{base}/{i['00080018']['Value'][0]}/frames/1" for i in instances]
        sample = instances[0]
        frame_bytes = (
            sample["00280010"]["Value"][0]
            * sample["00280011"]["Value"][0]
            * sample["00280100"]["Value"][0]
            // 8
        )
        plans = [(False, "httpx"), (True, "httpx"), (False, "http.client")]
        for split, kind in plans:
            how = "split the series" if split else "x whole series"
            row = Row(
                backend,
                f"frames as stored, {args.clients} clients {how} ({kind})",
                f">= {FRAMES_MB_S:.0f} MB/s",
                lambda r: r.throughput >= FRAMES_MB_S,
                unit="MB/s",
            )
            with Phase(server, row, args, rows).run():
                deadline = Deadline(row.metric, args.phase_timeout)
                measure_frames(
                    server, tech_token, urls, frame_bytes, args.clients, split, kind, row, deadline
                )

        row = Row(
            backend,
            f"rendered frame {args.size}x{args.size} JPEG",
            f"p95 < {RENDERED_P95_MS:.0f} ms",
            p95_below(RENDERED_P95_MS),
        )
        with Phase(server, row, args, rows).run():
            deadline = Deadline(row.metric, args.phase_timeout)
            measure_rendered(server, tech_token, urls, args.rendered, args.size, row, deadline)

        hospital.tech.close()
        admin.close()


# --- report ---------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    out = [
        "| backend | metric | n | p50 ms | p95 ms | throughput | server CPU ms/req "
        "| client CPU ms/req | target | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        if r.error and not r.n:
            out.append(
                f"| {r.backend} | {r.metric} | - | - | - | - | - | - | {r.target} | {r.verdict} |"
            )
            continue
        lat = (f"{r.p50:.1f}", f"{r.p95:.1f}") if r.latencies else ("-", "-")
        cpu = f"{1000 * r.server_cpu / r.n:.1f}" if r.n else "-"
        mine = f"{1000 * r.client_cpu / r.n:.1f}" if r.n else "-"
        out.append(
            f"| {r.backend} | {r.metric} | {r.n} | {lat[0]} | {lat[1]} "
            f"| {r.throughput:.1f} {r.unit} | {cpu} | {mine} | {r.target} | {r.verdict} |"
        )
    return "\n".join(out)


def qido_table(samples: list[QidoSample]) -> str:
    out = [
        "| backend | as | query | n | p50 ms | p95 ms | results (mean) |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    groups: dict[tuple[str, str, str], list[QidoSample]] = {}
    for s in samples:
        groups.setdefault((s.backend, s.who, s.kind), []).append(s)
    for (backend, who, kind), group in groups.items():
        times = [s.seconds for s in group]
        mean = sum(s.results for s in group) / len(group)
        out.append(
            f"| {backend} | {who} | {kind} | {len(group)} | {1000 * percentile(times, 50):.1f} "
            f"| {1000 * percentile(times, 95):.1f} | {mean:.0f} |"
        )
    return "\n".join(out)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--studies", type=int, default=10_000, help="one-instance studies")
    parser.add_argument("--slices", type=int, default=500, help="instances of the CT series")
    parser.add_argument("--size", type=int, default=512, help="rows and columns of the CT")
    parser.add_argument("--qido", type=int, default=200, help="QIDO queries per principal")
    parser.add_argument("--metadata", type=int, default=20, help="metadata requests")
    parser.add_argument("--rendered", type=int, default=100, help="rendered frames")
    parser.add_argument("--clients", type=int, default=4, help="parallel frame clients")
    parser.add_argument("--quick", action="store_true", help="1,000 studies, a 100-slice CT")
    parser.add_argument(
        "--ready-timeout", type=float, default=900, help="seconds to wait for the indexing"
    )
    parser.add_argument(
        "--phase-timeout", type=float, default=300, help="seconds for each measurement"
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy the server during each phase; raw files go here"
    )
    add_server_options(parser, "RADRELAY_LOG_LEVEL=warning")
    args = parser.parse_args(argv)
    backends = checked_backends(parser, args)
    args.set = SERVER_DEFAULTS + args.set
    if args.quick:
        args.studies, args.slices = 1_000, 100
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        if not Path(harness.PY_SPY).exists():
            harness.PY_SPY = shutil.which("py-spy") or harness.PY_SPY
        if not Path(harness.PY_SPY).exists():
            parser.error("--profile needs py-spy (pip install py-spy, in the venv or on PATH)")

    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)

    import pydicom

    rows: list[Row] = []
    samples: list[QidoSample] = []
    load_before = load_average()
    speed_before = interpreter_speed()
    interrupted = False
    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="radrelay-bench-"))
    data: DataSet | None = None
    try:
        log(f"generating {args.studies} small studies and a {args.slices}-slice CT ...")
        t0 = time.perf_counter()
        data = make_data(args.studies, args.slices, args.size, 16)
        log(f"generated in {time.perf_counter() - t0:.0f}s")
        for backend in backends:
            t0 = time.perf_counter()
            try:
                run_backend(backend, data, tmp, args, rows, samples)
            except Exception as exc:
                log(f"{backend}: FAILED: {type(exc).__name__}: {exc}")
                rows.append(Row(backend, "(the run)", "-", error=f"{type(exc).__name__}: {exc}"))
            log(f"{backend}: done in {time.perf_counter() - t0:.0f}s")
    except KeyboardInterrupt as exc:
        interrupted = True
        log(f"interrupted ({exc or 'Ctrl-C'}); cleaned up, the table shows what ran")
    finally:
        if args.keep:
            log(f"kept {tmp} (the servers' data dirs and logs)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"RadRelay DICOMweb read benchmark ({time.strftime('%Y-%m-%d %H:%M')})")
    print(
        f"- machine: {cores()} cores (nproc), {cpu_model()}; the server, its worker, PostgreSQL "
        "and the clients all run on these same cores"
    )
    print(
        f"- Python {platform.python_version()}, pydicom {pydicom.__version__}, "
        f"httpx {httpx.__version__}"
    )
    if data is not None:
        ct_mb = sum(len(p) for p in data.ct.parts) / 1e6
        print(
            f"- data: {len(data.small)} one-instance studies (16x16 CT) of as many patients, "
            f"one hospital; one CT series of {len(data.ct.parts)} x {args.size}x{args.size} "
            f"16-bit ({ct_mb:.0f} MB)"
        )
    print(
        "- embedded: SQLite, file storage, in-process jobs; postgres: PostgreSQL (fresh "
        "database) + Redis with a radrelay worker; server settings: " + ", ".join(args.set)
    )
    print(
        "- latencies at the client, one HTTP/1.1 keep-alive connection per client, sequential "
        "except the frames; QIDO as OHIF asks (limit=101, includefield=00081030,00080060); "
        "frames: MB/s of frame payload over the wall time of all clients"
    )
    print(
        "- server CPU: serve + worker (with their process pools) + PostgreSQL backends, per "
        "request (per instance for STOW-RS)"
    )
    print(
        f"- load average (1, 5, 15 min) before: {load_before}, after: {load_average()}; "
        f"the whole run took {time.perf_counter() - began:.0f}s"
    )
    print(
        f"- interpreter speed, sum(range(10**8)): {speed_before} before, {interpreter_speed()} "
        f"after ({harness.REFERENCE_SPEED})"
    )
    print()
    print(table(rows))
    if samples:
        print()
        print("QIDO by kind of query (the same queries in the same order on each backend):")
        print()
        print(qido_table(samples))
    if args.quick:
        print("\n(--quick: a smoke run; the numbers are not comparable with the targets)")
    if interrupted:
        return 130
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
