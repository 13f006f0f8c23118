"""Load: hospitals sending, radiologists reading and coordinators watching, all at once, against a
real ``radrelay serve``, for a bounded time; printed as tables.

    .venv/bin/python bench/load.py                    # 5 minutes on each backend
    .venv/bin/python bench/load.py --seconds 60       # a shorter run
    .venv/bin/python bench/load.py --quick            # smoke run: 30 s, fewer users, tiny studies

The servers are started as ``bench/ingest.py`` starts them (its harness is imported): a fresh
data dir, on ``postgres`` a new PostgreSQL database and a Redis queue name with a
``radrelay worker`` beside the server. Everyone is created through the admin API, as an admin
would (``POST /api/hospitals``, ``POST /api/users``, ``PUT /api/experts/{id}``), then, for
``--seconds``:

- hospitals (10): each sends a small synthetic CT (``radrelay.synth``, 16 slices of 128x128 by
  default) at random moments, ``--study-interval`` seconds apart on average (a seeded Poisson
  schedule, the same on each backend). Even-numbered hospitals send by STOW-RS (one request per
  study, as their technician), odd-numbered ones by C-STORE (pynetdicom, one association per
  study, in a thread as a modality would);
- radiologists (50): each holds a websocket (``/ws?token=``) and polls ``GET /api/worklist``
  every ``--poll`` seconds; after each poll they take one step on one case: claim it, start its
  report (the template chosen for the study), autosave ``--autosaves`` times, sign it with their
  username and password (a final report). They are credentialed at about 60% of the hospitals,
  on duty all week, online;
- coordinators (5): each holds a websocket and looks at the board (``GET /api/worklist``,
  unfiltered and filtered by hospital, status and SLA state in turn) every ``--board``
  seconds, and at ``GET /api/metrics/turnaround`` every ``--turnaround`` seconds.

All clients are asyncio + httpx (one keep-alive connection per user) and ``websockets`` in this
one process; C-STORE runs pynetdicom in threads. Latencies are measured at the client (request
sent to body received) and grouped by route template. Afterwards every case is read through the
API: each instance a hospital got a success status for must be indexed in its study's case (one
case per study), and each signed report's case must be final. The exit status is 1 only when a
result is wrong (an error status or exception, a missing instance, a signed case not final, a
``report.signed`` event its signer did not get); missed targets never fail the run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
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
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from ingest import (
    ADMIN_PASSWORD,
    CALLED_AE,
    Server,
    add_server_options,
    checked_backends,
    client_cpu,
    cores,
    cpu_model,
    load_average,
    log,
    running_server,
)

# The server settings this benchmark needs; --set overrides them.
SERVER_DEFAULTS = [
    # A study is complete 5 s after its last instance (default 60 s), so that cases reach the
    # readers within the run.
    "RADRELAY_STABLE_AGE_SECONDS=5",
    "RADRELAY_SWEEP_INTERVAL_SECONDS=1",
    # The run and its setup outlast the default 15-minute access token.
    "RADRELAY_ACCESS_TOKEN_MINUTES=240",
]

ALL_WEEK = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]
OTHER_SUBSPECIALTIES = ["chest", "neuro", "msk", "genitourinary", "vascular", "head_neck"]
FINDINGS = "肝脏大小、形态正常，实质密度均匀，未见异常密度灶。双肾未见结石及积水。"
IMPRESSION = "腹盆腔CT平扫未见明确异常。"
STOW_ACCEPT = "application/dicom+json"
BODY_LINES = 3  # lines of an error's body printed
KEEPALIVE_SECONDS = 4.0  # below the server's (uvicorn's default timeout_keep_alive, 5 s)

Json = dict[str, Any]


# --- what is measured -------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Endpoint:
    latencies: list[float] = field(default_factory=list)  # seconds, every answer received
    errors: int = 0
    examples: list[str] = field(default_factory=list)  # the first few errors, as printed


class Stats:
    """Latencies and errors per endpoint (route template). Appended to from the event loop and
    from the C-STORE threads: list appends are atomic under the GIL."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = collections.defaultdict(Endpoint)
        self.started = time.monotonic()  # examples say when, to find them in the server's log

    def ok(self, name: str, seconds: float) -> None:
        self.endpoints[name].latencies.append(seconds)

    def error(self, name: str, what: str, seconds: float | None = None) -> None:
        endpoint = self.endpoints[name]
        if seconds is not None:
            endpoint.latencies.append(seconds)
        endpoint.errors += 1
        if len(endpoint.examples) < 3:
            at = time.monotonic() - self.started
            endpoint.examples.append(f"at {at:.0f} s ({time.strftime('%H:%M:%S')}): {what}")

    @property
    def errors(self) -> int:
        return sum(e.errors for e in self.endpoints.values())


def first_lines(text: str) -> str:
    lines = text.strip().splitlines()[:BODY_LINES]
    return " / ".join(line[:200] for line in lines) or "(empty body)"


@dataclass
class Run:
    """One backend's run: the clock, what was done and what was seen."""

    backend: str
    server: Server
    args: argparse.Namespace
    stats: Stats = field(default_factory=Stats)
    start: float = 0.0
    end: float = 0.0  # no new work starts after this (monotonic)
    finished: float = 0.0  # the last in-flight work ended
    studies: int = 0  # studies every instance of which was acknowledged
    instances: int = 0  # instances acknowledged
    bytes_sent: int = 0
    claims: int = 0
    claims_lost: int = 0  # an offered case another reader claimed first (409): not an error
    reports_started: int = 0
    autosaves: int = 0
    signed: dict[int, int] = field(default_factory=dict)  # case id -> signer's user id
    signed_reports: dict[int, int] = field(default_factory=dict)  # report id -> signer
    ws_events: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    ws_connections: collections.Counter[str] = field(default_factory=collections.Counter)
    ws_signed_seen: set[tuple[int, int]] = field(default_factory=set)  # (report id, user id)
    ws_signed_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    memory: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )  # process -> (seconds since start, MB)
    pool_sizes: dict[str, int] = field(default_factory=dict)
    loop_lag: list[float] = field(default_factory=list)  # seconds late, every 100 ms tick
    server_cpu: float = 0.0
    database_cpu: float = 0.0
    client_cpu: float = 0.0
    checks: list[tuple[str, str, bool]] = field(default_factory=list)  # (check, result, ok)
    cases_total: int = 0
    cases_routed: int = 0
    case_statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    route_delays: list[float] = field(default_factory=list)  # ready_at -> routed_at, seconds
    failure: str = ""  # the run itself failed (setup, a crash)
    exited: dict[str, int] = field(default_factory=dict)  # server process -> exit status

    @property
    def stopping(self) -> bool:
        return time.monotonic() >= self.end

    @property
    def seconds(self) -> float:
        return max(1e-9, (self.finished or time.monotonic()) - self.start)

    @property
    def failed(self) -> bool:
        return bool(self.failure or self.stats.errors or not all(ok for _, _, ok in self.checks))


# --- people ---------------------------------------------------------------------------------


@dataclass
class User:
    username: str
    password: str
    role: str
    id: int = 0
    token: str = ""
    http: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        assert self.http is not None
        return self.http


@dataclass
class Hospital:
    index: int
    id: int
    code: str
    ae_title: str
    tech: User
    kind: str  # "stow" or "cstore"
    acked: dict[str, int] = field(default_factory=dict)  # study UID -> instances acknowledged


async def timed(
    run: Run,
    name: str,
    request: Awaitable[httpx.Response],
    expect: Iterable[int] = (200,),
) -> httpx.Response | None:
    """The answer if its status is expected; otherwise the error is recorded and None returned."""
    started = time.perf_counter()
    try:
        r = await request
    except (httpx.HTTPError, OSError) as exc:
        run.stats.error(name, f"{type(exc).__name__}: {exc or '(no message)'}")
        return None
    seconds = time.perf_counter() - started
    if r.status_code not in set(expect):
        run.stats.error(name, f"HTTP {r.status_code}: {first_lines(r.text)}", seconds)
        return None
    run.stats.ok(name, seconds)
    return r


def new_client(run: Run, token: str = "") -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        base_url=run.server.url,
        headers=headers,
        timeout=120,
        # uvicorn closes a connection idle for 5 s, httpx keeps one for 5 s: a request sent
        # on it as the server closes it fails (ReadError), and the worklist polls come every
        # 5 s. Browsers retry such a request; this client drops idle connections first.
        limits=httpx.Limits(
            max_connections=2, max_keepalive_connections=1, keepalive_expiry=KEEPALIVE_SECONDS
        ),
    )


async def sign_in(run: Run, user: User) -> None:
    async with new_client(run) as anonymous:
        r = await anonymous.post(
            "/api/auth/token", data={"username": user.username, "password": user.password}
        )
    if r.status_code != 200:
        raise RuntimeError(f"sign-in of {user.username}: HTTP {r.status_code} {r.text[:300]}")
    user.token = r.json()["access_token"]
    user.http = new_client(run, user.token)
    me = await user.client.get("/api/me")
    me.raise_for_status()
    user.id = int(me.json()["id"])


async def expect_created(r: Awaitable[httpx.Response], what: str) -> Json:
    answer = await r
    if answer.status_code not in (200, 201):
        raise RuntimeError(f"{what}: HTTP {answer.status_code} {answer.text[:300]}")
    return answer.json()  # type: ignore[no-any-return]


async def create_user(run: Run, admin: User, role: str, hospital_code: str | None = None) -> User:
    user = User(f"load-{role}-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(12), role)
    await expect_created(
        admin.client.post(
            "/api/users",
            json={
                "username": user.username,
                "role": role,
                "password": user.password,
                "hospital_code": hospital_code,
            },
        ),
        f"creating {user.username}",
    )
    await sign_in(run, user)
    return user


async def create_hospital(run: Run, admin: User, index: int) -> Hospital:
    tag = uuid.uuid4().hex[:8].upper()
    code, ae = f"L{tag}", f"LOAD{tag}"
    created = await expect_created(
        admin.client.post(
            "/api/hospitals",
            json={
                "code": code,
                "name": f"负载测试医院 Load Hospital {index + 1}",
                "ae_titles": [{"ae_title": ae, "source_addresses": []}],
            },
        ),
        f"creating hospital {code}",
    )
    tech = await create_user(run, admin, "tech", code)
    kind = "stow" if index % 2 == 0 else "cstore"
    return Hospital(index, int(created["id"]), code, ae, tech, kind)


async def create_radiologist(
    run: Run, admin: User, hospitals: Sequence[Hospital], rng: random.Random
) -> User:
    user = await create_user(run, admin, "radiologist")
    credentialed = [h for h in hospitals if rng.random() < 0.6] or [rng.choice(hospitals)]
    subspecialties = {"abdominal": rng.randint(1, 3), "general": 1}
    for name in rng.sample(OTHER_SUBSPECIALTIES, 2):
        subspecialties[name] = rng.randint(1, 3)
    await expect_created(
        admin.client.put(
            f"/api/experts/{user.id}",
            json={
                "employment": "full_time",
                "qualification": "final",
                "subspecialties": subspecialties,
                "credentials": [{"hospital_code": h.code} for h in credentialed],
                "shifts": ALL_WEEK,
            },
        ),
        f"the expert profile of {user.username}",
    )
    await expect_created(
        user.client.put("/api/experts/me/state", json={"state": "online"}),
        f"{user.username} going online",
    )
    return user


async def gather_limited(n: int, factories: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Runs the coroutines ``n`` at a time (setup: password hashing is CPU-bound on the server)."""
    gate = asyncio.Semaphore(n)

    async def one(factory: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await factory()

    return list(await asyncio.gather(*(one(f) for f in factories)))


# --- hospitals --------------------------------------------------------------------------------


def make_study(hospital: Hospital, seed: int, slices: int, size: int) -> list[Any]:
    """A new CT study of the hospital (UIDs from its code and the seed; a random patient)."""
    from radrelay import synth

    return list(synth.study("CT", seed=seed, slices=slices, size=size, hospital=hospital.code))


def multipart(parts: Sequence[bytes]) -> tuple[bytes, str]:
    boundary = f"radrelay-load-{uuid.uuid4().hex}"
    chunks: list[bytes] = []
    for part in parts:
        chunks += [
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(),
            part,
            b"\r\n",
        ]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f'multipart/related; type="application/dicom"; boundary={boundary}'


def stow_body(datasets: Sequence[Any]) -> tuple[bytes, str]:
    from radrelay import synth

    return multipart([synth.encode(ds) for ds in datasets])


async def send_stow(run: Run, hospital: Hospital, datasets: Sequence[Any]) -> None:
    loop = asyncio.get_running_loop()
    body, ctype = await loop.run_in_executor(None, stow_body, datasets)
    name = "POST /dicomweb/studies"
    r = await timed(
        run,
        name,
        hospital.tech.client.post(
            "/dicomweb/studies",
            content=body,
            headers={"Content-Type": ctype, "Accept": STOW_ACCEPT},
        ),
    )
    if r is None:
        return
    answer = r.json()
    stored = answer.get("00081199", {}).get("Value", [])
    failed = answer.get("00081198", {}).get("Value", [])
    study_uid = str(datasets[0].StudyInstanceUID)
    hospital.acked[study_uid] = hospital.acked.get(study_uid, 0) + len(stored)
    run.instances += len(stored)
    run.bytes_sent += len(body)
    if failed or len(stored) != len(datasets):
        run.stats.error(
            name,
            f"HTTP 200 but stored {len(stored)} of {len(datasets)}, {len(failed)} failed: "
            f"{json.dumps(failed)[:300]}",
        )
        return
    run.studies += 1


def send_cstore(run: Run, hospital: Hospital, datasets: Sequence[Any]) -> None:
    """One association per study, as a modality sends (runs in a thread)."""
    from pynetdicom import AE

    ae = AE(ae_title=hospital.ae_title)
    ae.add_requested_context(datasets[0].SOPClassUID, datasets[0].file_meta.TransferSyntaxUID)
    ae.network_timeout = ae.dimse_timeout = ae.acse_timeout = 120
    started = time.perf_counter()
    assoc = ae.associate("127.0.0.1", run.server.dicom_port, ae_title=CALLED_AE)
    if not assoc.is_established:
        run.stats.error(
            "DICOM A-ASSOCIATE", f"{hospital.ae_title}: the association was not established"
        )
        return
    run.stats.ok("DICOM A-ASSOCIATE", time.perf_counter() - started)
    # As dcmtk's storescu with TCP_NODELAY=1: no Nagle delay on the small command PDUs.
    assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
    study_uid = str(datasets[0].StudyInstanceUID)
    acked = 0
    try:
        for ds in datasets:
            where = f"{hospital.ae_title}, instance {ds.InstanceNumber} of study {study_uid}"
            began = time.perf_counter()
            try:
                status = assoc.send_c_store(ds)
            except Exception as exc:  # pynetdicom raises plain exceptions on a dead link
                run.stats.error("DICOM C-STORE", f"{where}: {type(exc).__name__}: {exc}")
                break
            seconds = time.perf_counter() - began
            code = int(status.Status) if status and "Status" in status else None
            if code == 0:
                run.stats.ok("DICOM C-STORE", seconds)
                acked += 1
                run.bytes_sent += len(ds.PixelData)  # about the object: the pixels dominate
            elif code is None:
                run.stats.error(
                    "DICOM C-STORE", f"{where}: no response (aborted or timed out)", seconds
                )
                break
            else:
                comment = str(status.get("ErrorComment", "")) if status else ""
                run.stats.error("DICOM C-STORE", f"{where}: status 0x{code:04X} {comment}", seconds)
    finally:
        if assoc.is_established:
            assoc.release()
    hospital.acked[study_uid] = hospital.acked.get(study_uid, 0) + acked
    run.instances += acked
    if acked == len(datasets):
        run.studies += 1


async def hospital_loop(run: Run, hospital: Hospital) -> None:
    """Studies at seeded Poisson moments until the end of the run; a study still being sent
    then is finished."""
    args = run.args
    rng = random.Random(f"{args.seed}:hospital:{hospital.index}")
    loop = asyncio.get_running_loop()
    at = run.start + rng.expovariate(1 / args.study_interval)
    seed = 0
    while at < run.end:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        seed += 1
        datasets = await loop.run_in_executor(
            None, make_study, hospital, seed, args.slices, args.size
        )
        if hospital.kind == "stow":
            await send_stow(run, hospital, datasets)
        else:
            await loop.run_in_executor(None, send_cstore, run, hospital, datasets)
        at += rng.expovariate(1 / args.study_interval)


# --- radiologists and coordinators -------------------------------------------------------------


@dataclass
class Reading:
    case_id: int
    report_id: int = 0
    revision: int = 0
    entries: Json = field(default_factory=dict)
    autosaves: int = 0


async def radiologist_loop(run: Run, user: User, index: int) -> None:
    """Poll the worklist; after each poll, one step on the case being read."""
    args = run.args
    rng = random.Random(f"{args.seed}:radiologist:{index}")
    http = user.client
    current: Reading | None = None
    await asyncio.sleep(rng.uniform(0, args.poll))
    while not run.stopping:
        r = await timed(run, "GET /api/worklist (reader)", http.get("/api/worklist"))
        if r is not None and not run.stopping:
            items = r.json()["items"]
            if current is None:
                current = await take_one(run, user, items)
            elif not current.report_id:
                await start_report(run, user, current)
            elif current.autosaves < args.autosaves:
                await autosave(run, user, current)
            else:
                signed = await timed(
                    run,
                    "POST /api/reports/{id}/sign",
                    http.post(
                        f"/api/reports/{current.report_id}/sign",
                        json={"username": user.username, "password": user.password},
                    ),
                )
                if signed is not None:
                    run.signed[current.case_id] = user.id
                    run.signed_reports[current.report_id] = user.id
                current = None  # signed, or the failure is recorded: take another case
        await asyncio.sleep(args.poll * rng.uniform(0.8, 1.2))


async def take_one(run: Run, user: User, items: Sequence[Json]) -> Reading | None:
    """Claim the first case of the worklist: one being read already, else assigned, else the
    top of the pool."""
    order = {"reading": 0, "assigned": 1, "offered": 2}
    held = sorted((i for i in items if i.get("hold") in order), key=lambda i: order[i["hold"]])
    if not held:
        return None
    item = held[0]
    case_id = int(item["case"]["id"])
    # An offered case is anyone's of the few it was offered to: losing it is not an error.
    expect = (200, 409) if item["hold"] == "offered" else (200,)
    r = await timed(
        run,
        "POST /api/cases/{id}/claim",
        user.client.post(f"/api/cases/{case_id}/claim"),
        expect,
    )
    if r is None:
        return None
    if r.status_code == 409:
        run.claims_lost += 1
        return None
    run.claims += 1
    return Reading(case_id)


async def start_report(run: Run, user: User, reading: Reading) -> None:
    r = await timed(
        run,
        "POST /api/cases/{id}/report",
        user.client.post(f"/api/cases/{reading.case_id}/report", json={}),
        (201, 409),
    )
    if r is not None and r.status_code == 409:
        # Started before (the reader took up again a case whose signing failed): carry on
        # with it, as the editor does.
        r = await timed(
            run,
            "GET /api/cases/{id}/report",
            user.client.get(f"/api/cases/{reading.case_id}/report"),
        )
    if r is None:
        return
    report = r.json()
    reading.report_id = int(report["id"])
    reading.revision = int(report["draft"]["revision"])
    reading.entries = dict(report["draft"]["entries"])
    run.reports_started += 1


async def autosave(run: Run, user: User, reading: Reading) -> None:
    # The first autosave writes the findings, the next the impression: as typed.
    texts = {"findings": FINDINGS}
    if reading.autosaves + 1 >= run.args.autosaves:
        texts["impression"] = IMPRESSION
    name = "PUT /api/reports/{id}/draft"
    r = await timed(
        run,
        name,
        user.client.put(
            f"/api/reports/{reading.report_id}/draft",
            json={"revision": reading.revision, "entries": reading.entries, "texts": texts},
        ),
    )
    if r is None:
        return
    draft = r.json()
    reading.revision = int(draft["revision"])
    reading.autosaves += 1
    run.autosaves += 1
    if reading.autosaves >= run.args.autosaves and draft["missing"]:
        run.stats.error(name, f"the complete draft still misses {draft['missing']}")


def board_queries(hospitals: Sequence[Hospital]) -> list[dict[str, Any]]:
    """What a coordinator looks at in turn: everything, one hospital, the unrouted, the late."""
    queries: list[dict[str, Any]] = [{}]
    queries += [{"hospital_id": h.id} for h in hospitals]
    queries += [{"status": ["ready"]}, {"status": ["reading"]}, {"sla_state": ["warning"]}]
    return queries


async def coordinator_loop(run: Run, user: User, index: int, hospitals: Sequence[Hospital]) -> None:
    args = run.args
    rng = random.Random(f"{args.seed}:coordinator:{index}")
    queries = board_queries(hospitals)
    group_by = ["hospital", "subspecialty", "expert", "priority"]
    await asyncio.sleep(rng.uniform(0, args.board))
    next_turnaround = time.monotonic() + rng.uniform(0, args.turnaround)
    turn = index
    while not run.stopping:
        params = queries[turn % len(queries)]
        await timed(
            run, "GET /api/worklist (board)", user.client.get("/api/worklist", params=params)
        )
        if time.monotonic() >= next_turnaround and not run.stopping:
            await timed(
                run,
                "GET /api/metrics/turnaround",
                user.client.get(
                    "/api/metrics/turnaround", params={"group_by": group_by[turn % len(group_by)]}
                ),
            )
            next_turnaround += args.turnaround
        turn += 1
        await asyncio.sleep(args.board * rng.uniform(0.8, 1.2))


# --- websockets ---------------------------------------------------------------------------------


async def listen(run: Run, user: User, connected: asyncio.Event) -> None:
    """The user's live socket for the whole run: events counted by type; a socket that closes
    before the end is an error, and the user connects again."""
    import websockets

    url = run.server.url.replace("http://", "ws://") + f"/ws?token={user.token}"
    name = "WS /ws (to hello)"
    while True:
        started = time.perf_counter()
        try:
            async with websockets.connect(url, open_timeout=60, max_size=2**20) as conn:
                hello = json.loads(await asyncio.wait_for(conn.recv(), 60))
                if hello.get("type") != "hello":
                    run.stats.error(name, f"first message {str(hello)[:200]}")
                    return
                run.stats.ok(name, time.perf_counter() - started)
                run.ws_connections[user.role] += 1
                connected.set()
                async for message in conn:
                    event = json.loads(message)
                    kind = str(event.get("type"))
                    run.ws_events[user.role][kind] += 1
                    if kind == "report.signed" and event.get("report_id") is not None:
                        run.ws_signed_seen.add((int(event["report_id"]), user.id))
                        run.ws_signed_arrived.set()
                # The server closed it.
                run.stats.error("WS /ws (closed)", f"closed by the server: {conn.close_code}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            run.stats.error("WS /ws (closed)", f"{type(exc).__name__}: {exc}")
        if run.stopping:
            return
        await asyncio.sleep(1)


# --- the server's processes ------------------------------------------------------------------


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = collections.defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rpartition(")")[2].split()
            children[int(fields[1])].append(int(stat.parent.name))
    found, todo = [], list(children.get(pid, ()))
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def memory_sample(server: Server) -> dict[str, tuple[float, int]]:
    """MB of RSS now: the api process, its child processes (the ingest pool: summed, so pages
    they share are counted once per process), the worker with its children."""
    sample: dict[str, tuple[float, int]] = {}
    for name, proc in server.procs.items():
        label = "api" if name == "serve" else name
        own = rss_mb(proc.pid)
        if own is None:
            continue
        kids = [m for m in (rss_mb(p) for p in descendants(proc.pid)) if m is not None]
        if name == "serve":
            sample[label] = (own, 1)
            if kids:
                sample["api children (ingest pool)"] = (sum(kids), len(kids))
        else:
            sample[label] = (own + sum(kids), 1 + len(kids))
    return sample


async def sample_memory(run: Run) -> None:
    loop = asyncio.get_running_loop()
    while True:
        for name, proc in run.server.procs.items():
            code = proc.poll()
            if code is not None and name not in run.exited:
                run.exited[name] = code
                run.stats.error("(server)", f"radrelay {name} exited with status {code}")
        sample = await loop.run_in_executor(None, memory_sample, run.server)
        at = time.monotonic() - run.start
        for name, (mb, count) in sample.items():
            run.memory[name].append((at, mb))
            run.pool_sizes[name] = max(run.pool_sizes.get(name, 0), count)
        await asyncio.sleep(run.args.sample)


async def watch_loop_lag(run: Run) -> None:
    """How late this process's event loop wakes up: the client's own saturation, which adds
    to every latency measured."""
    while True:
        before = time.perf_counter()
        await asyncio.sleep(0.1)
        run.loop_lag.append(max(0.0, time.perf_counter() - before - 0.1))


# --- afterwards -------------------------------------------------------------------------------


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def all_cases(admin: User) -> list[Json]:
    cases: list[Json] = []
    while True:
        r = await admin.client.get("/api/cases", params={"limit": 500, "offset": len(cases)})
        r.raise_for_status()
        page = r.json()
        cases += page["items"]
        if not page["items"] or len(cases) >= page["total"]:
            return cases


async def check(run: Run, admin: User, hospitals: Sequence[Hospital]) -> None:
    cases = await all_cases(admin)
    run.cases_total = len(cases)
    by_study: dict[str, list[Json]] = collections.defaultdict(list)
    for c in cases:
        by_study[c["study_instance_uid"]].append(c)
        if c.get("routed_at"):
            run.cases_routed += 1
            ready, routed = parse_time(c.get("ready_at")), parse_time(c["routed_at"])
            if ready and routed:
                run.route_delays.append(max(0.0, (routed - ready).total_seconds()))
        run.case_statuses[c["status"]] += 1

    acked = sum(sum(h.acked.values()) for h in hospitals)
    missing, split = 0, 0
    for h in hospitals:
        for study_uid, n in h.acked.items():
            found = by_study.get(study_uid, [])
            if len(found) > 1:
                split += 1
            indexed = sum(int(c["number_of_instances"]) for c in found)
            missing += max(0, n - indexed)
    run.checks.append(
        (
            "acknowledged instances indexed",
            f"{acked - missing} of {acked}" + (f" ({missing} MISSING)" if missing else ""),
            missing == 0,
        )
    )
    run.checks.append(
        ("one case per study", f"{split} studies in several cases" if split else "yes", not split)
    )
    gone = {n: p.poll() for n, p in run.server.procs.items() if p.poll() is not None}
    run.checks.append(
        (
            "server processes alive to the end",
            ", ".join(f"{n} exited ({c})" for n, c in gone.items()) or "yes",
            not gone,
        )
    )
    status = {c["id"]: c["status"] for c in cases}
    not_final = [cid for cid in run.signed if status.get(cid) != "final"]
    run.checks.append(
        (
            "signed cases final",
            f"{len(run.signed) - len(not_final)} of {len(run.signed)}",
            not not_final,
        )
    )
    unseen = [
        rid for rid, uid in run.signed_reports.items() if (rid, uid) not in run.ws_signed_seen
    ]
    run.checks.append(
        (
            "report.signed reached its signer's socket",
            f"{len(run.signed_reports) - len(unseen)} of {len(run.signed_reports)}",
            not unseen,
        )
    )


# --- one backend ------------------------------------------------------------------------------


async def run_backend(run: Run) -> None:
    args = run.args
    loop = asyncio.get_running_loop()
    # pynetdicom associations and study generation run in threads: one each per hospital.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=2 * args.hospitals + 4))
    rng = random.Random(f"{args.seed}:setup")
    admin = User("admin", ADMIN_PASSWORD, "admin")
    await sign_in(run, admin)
    users: list[User] = [admin]
    tasks: list[asyncio.Task[Any]] = []
    try:
        log(
            f"{run.backend}: creating {args.hospitals} hospitals, {args.radiologists} "
            f"radiologists and {args.coordinators} coordinators through the admin API ..."
        )
        t0 = time.perf_counter()
        hospitals: list[Hospital] = await gather_limited(
            4, [partial(create_hospital, run, admin, i) for i in range(args.hospitals)]
        )
        users += [h.tech for h in hospitals]
        radiologists: list[User] = await gather_limited(
            4,
            [
                partial(create_radiologist, run, admin, hospitals, random.Random(rng.random()))
                for _ in range(args.radiologists)
            ],
        )
        coordinators: list[User] = await gather_limited(
            4, [partial(create_user, run, admin, "coordinator") for _ in range(args.coordinators)]
        )
        users += radiologists + coordinators
        log(f"{run.backend}: set up in {time.perf_counter() - t0:.0f}s; opening the websockets ...")

        run.start = time.monotonic()
        run.end = run.start + 10**9  # the sockets stay open until the run's end is set
        listeners: list[asyncio.Task[Any]] = []
        connected: list[asyncio.Event] = []
        for user in radiologists + coordinators:
            event = asyncio.Event()
            connected.append(event)
            listeners.append(asyncio.create_task(listen(run, user, event)))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in connected)), 120)
        tasks += listeners

        server_before = await loop.run_in_executor(None, run.server.cpu)
        client_before = client_cpu()
        run.start = run.stats.started = time.monotonic()
        run.end = run.start + args.seconds
        tasks += [
            asyncio.create_task(sample_memory(run)),
            asyncio.create_task(watch_loop_lag(run)),
        ]
        log(f"{run.backend}: running for {args.seconds:.0f}s ...")
        workers = [asyncio.create_task(hospital_loop(run, h)) for h in hospitals]
        workers += [
            asyncio.create_task(radiologist_loop(run, u, i)) for i, u in enumerate(radiologists)
        ]
        workers += [
            asyncio.create_task(coordinator_loop(run, u, i, hospitals))
            for i, u in enumerate(coordinators)
        ]
        progress = asyncio.create_task(report_progress(run))
        tasks.append(progress)
        await asyncio.sleep(args.seconds)
        log(f"{run.backend}: time is up; waiting for the requests in flight ...")
        done, pending = await asyncio.wait(workers, timeout=args.drain)
        for task in pending:
            task.cancel()
            run.stats.error("(drain)", f"work still in flight {args.drain:.0f}s after the end")
        for task in done:
            if task.exception() is not None:
                exc = task.exception()
                run.stats.error("(client)", f"{type(exc).__name__}: {exc}")
        run.finished = time.monotonic()
        run.client_cpu = client_cpu() - client_before
        server_after = await loop.run_in_executor(None, run.server.cpu)
        delta = {k: v - server_before.get(k, 0.0) for k, v in server_after.items()}
        run.server_cpu = delta.pop("server")
        run.database_cpu = sum(max(0.0, v) for v in delta.values())

        # The last signatures' events are on their way.
        wanted = set(run.signed_reports.items())
        deadline = time.monotonic() + 10
        while not wanted <= run.ws_signed_seen and time.monotonic() < deadline:
            run.ws_signed_arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.ws_signed_arrived.wait(), deadline - time.monotonic())
        await check(run, admin, hospitals)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for user in users:
            if user.http is not None:
                await user.http.aclose()


async def report_progress(run: Run) -> None:
    while True:
        await asyncio.sleep(30)
        log(
            f"{run.backend}: {time.monotonic() - run.start:.0f}s: {run.studies} studies, "
            f"{run.instances} instances, {run.claims} claims, {len(run.signed)} signed, "
            f"{run.stats.errors} errors"
        )


def run_one(backend: str, tmp: Path, args: argparse.Namespace) -> Run:
    log(f"{backend}: starting the server ...")
    with running_server(backend, tmp, args) as server:
        run = Run(backend, server, args)
        try:
            asyncio.run(run_backend(run))
        except Exception as exc:
            run.failure = f"{type(exc).__name__}: {exc}"
            log(f"{backend}: FAILED: {run.failure}")
        if run.failed:
            server.failed = True  # the harness prints the end of the server's log
        log(
            f"{backend}: {run.studies} studies, {run.instances} instances, "
            f"{len(run.signed)} reports signed, {run.stats.errors} errors"
        )
        return run


# --- tables -----------------------------------------------------------------------------------


def per_backend(rows: list[tuple[str, list[str]]], runs: Sequence[Run]) -> str:
    out = [
        "| | " + " | ".join(r.backend for r in runs) + " |",
        "|---|" + "---:|" * len(runs),
    ]
    out += [f"| {label} | " + " | ".join(values) + " |" for label, values in rows]
    return "\n".join(out)


def throughput_table(runs: Sequence[Run]) -> str:
    def each(fn: Callable[[Run], str]) -> list[str]:
        return [fn(r) for r in runs]

    def lag(r: Run, p: float) -> str:
        return f"{1000 * percentile(r.loop_lag, p):.0f}" if r.loop_lag else "-"

    def delay(r: Run, p: float) -> str:
        return f"{percentile(r.route_delays, p):.1f}" if r.route_delays else "-"

    rows = [
        ("measured seconds (to the last answer)", each(lambda r: f"{r.seconds:.0f}")),
        ("studies sent (every instance acknowledged)", each(lambda r: f"{r.studies}")),
        ("studies/min", each(lambda r: f"{60 * r.studies / r.seconds:.1f}")),
        ("instances acknowledged", each(lambda r: f"{r.instances}")),
        ("instances/s", each(lambda r: f"{r.instances / r.seconds:.1f}")),
        ("MB/s sent", each(lambda r: f"{r.bytes_sent / 1e6 / r.seconds:.2f}")),
        ("cases received (at the end)", each(lambda r: f"{r.cases_total}")),
        ("cases routed (at the end)", each(lambda r: f"{r.cases_routed}")),
        ("cases by status (at the end)", each(statuses)),
        ("ready to routed, p50 / p95 s", each(lambda r: f"{delay(r, 50)} / {delay(r, 95)}")),
        ("claims (lost to another reader)", each(lambda r: f"{r.claims} ({r.claims_lost})")),
        ("reports started / autosaves", each(lambda r: f"{r.reports_started} / {r.autosaves}")),
        ("reports signed", each(lambda r: f"{len(r.signed)}")),
        ("reports signed/min", each(lambda r: f"{60 * len(r.signed) / r.seconds:.1f}")),
        ("requests (HTTP, DICOM)", each(lambda r: f"{requests(r)}")),
        ("errors", each(lambda r: f"{r.stats.errors}" + (" (run FAILED)" if r.failure else ""))),
        (
            "server CPU, % of one core (serve + worker + pools)",
            each(lambda r: f"{100 * r.server_cpu / r.seconds:.0f}%"),
        ),
        (
            "PostgreSQL CPU, % of one core",
            each(
                lambda r: (
                    f"{100 * r.database_cpu / r.seconds:.0f}%"
                    if r.backend == "postgres"
                    else "(in server)"
                )
            ),
        ),
        (
            "client CPU, % of one core (this process)",
            each(lambda r: f"{100 * r.client_cpu / r.seconds:.0f}%"),
        ),
        ("client event-loop lag p50 / p99 ms", each(lambda r: f"{lag(r, 50)} / {lag(r, 99)}")),
    ]
    return per_backend(rows, runs)


ORDER = ["receiving", "ready", "offered", "assigned", "reading", "paused", "preliminary", "final"]


def statuses(run: Run) -> str:
    known = [s for s in ORDER if run.case_statuses[s]]
    known += sorted(s for s in run.case_statuses if s not in ORDER)
    return ", ".join(f"{s} {run.case_statuses[s]}" for s in known) or "-"


def requests(run: Run) -> int:
    return sum(len(e.latencies) for e in run.stats.endpoints.values())


def latency_table(runs: Sequence[Run]) -> str:
    out = [
        "| endpoint | backend | n | per s | p50 ms | p95 ms | p99 ms | max ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = sorted({n for r in runs for n in r.stats.endpoints})
    for name in names:
        for r in runs:
            e = r.stats.endpoints.get(name)
            if e is None:
                continue
            lat = [1000 * s for s in e.latencies]
            if lat:
                cells = [
                    f"{percentile(lat, 50):.1f}",
                    f"{percentile(lat, 95):.1f}",
                    f"{percentile(lat, 99):.1f}",
                    f"{max(lat):.1f}",
                ]
            else:
                cells = ["-"] * 4
            out.append(
                f"| {name} | {r.backend} | {len(lat)} | {len(lat) / r.seconds:.1f} | "
                + " | ".join(cells)
                + f" | {e.errors} |"
            )
    return "\n".join(out)


def error_lines(runs: Sequence[Run]) -> list[str]:
    lines = []
    for r in runs:
        if r.failure:
            lines.append(f"- {r.backend}: the run failed: {r.failure}")
        for name, e in sorted(r.stats.endpoints.items()):
            if e.errors:
                lines.append(f"- {r.backend}: {name}: {e.errors} errors; first ones:")
                lines += [f"    - {example}" for example in e.examples]
    return lines


def websocket_table(runs: Sequence[Run]) -> str:
    rows: list[tuple[str, list[str]]] = []
    roles = sorted({role for r in runs for role in r.ws_events} | {"radiologist", "coordinator"})
    for role in roles:
        rows.append(
            (
                f"{role}s: connections (incl. reconnects)",
                [f"{r.ws_connections[role]}" for r in runs],
            )
        )
        kinds = sorted({k for r in runs for k in r.ws_events[role]})
        for kind in kinds:
            rows.append((f"{role}s: {kind}", [f"{r.ws_events[role][kind]}" for r in runs]))
        rows.append(
            (
                f"{role}s: events (pings excluded)",
                [
                    str(sum(n for k, n in r.ws_events[role].items() if k not in ("hello", "ping")))
                    for r in runs
                ],
            )
        )
    return per_backend(rows, runs)


def memory_table(runs: Sequence[Run]) -> str:
    out = [
        "| backend | process | samples | start MB | min MB | p50 MB | max MB | end MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        for name, series in r.memory.items():
            # Samples of the run itself (the last ones may fall after the drain).
            values = [mb for at, mb in series if at <= r.seconds + r.args.sample] or [
                mb for _, mb in series
            ]
            count = r.pool_sizes.get(name, 1)
            label = f"{name}, {count} processes" if count > 1 else name
            out.append(
                f"| {r.backend} | {label} | {len(values)} | {values[0]:.0f} | {min(values):.0f} | "
                f"{statistics.median(values):.0f} | {max(values):.0f} | {values[-1]:.0f} |"
            )
    return "\n".join(out)


def checks_table(runs: Sequence[Run]) -> str:
    names: list[str] = []
    for r in runs:
        names += [n for n, _, _ in r.checks if n not in names]
    rows = []
    for name in names:
        cells = []
        for r in runs:
            found = [(res, ok) for n, res, ok in r.checks if n == name]
            cells.append(f"{found[0][0]} {'ok' if found[0][1] else 'WRONG'}" if found else "-")
        rows.append((name, cells))
    return per_backend(rows, runs)


def code_version() -> str:
    """The commit measured, and whether the backend had changes not committed yet."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
            )
        except OSError:
            return ""
        return out.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "backend", "worklist_rules", "reports_templates")
    return f"commit {commit}" + (", with uncommitted changes in backend/ or rules" if dirty else "")


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=300, help="how long the load runs")
    parser.add_argument("--hospitals", type=int, default=10)
    parser.add_argument("--radiologists", type=int, default=50)
    parser.add_argument("--coordinators", type=int, default=5)
    parser.add_argument(
        "--study-interval", type=float, default=10, help="mean seconds between a hospital's studies"
    )
    parser.add_argument("--slices", type=int, default=16, help="instances per study")
    parser.add_argument("--size", type=int, default=128, help="rows and columns of each slice")
    parser.add_argument("--poll", type=float, default=5, help="seconds between worklist polls")
    parser.add_argument("--autosaves", type=int, default=2, help="autosaves before signing")
    parser.add_argument("--board", type=float, default=5, help="seconds between board views")
    parser.add_argument(
        "--turnaround", type=float, default=30, help="seconds between turnaround views"
    )
    parser.add_argument("--sample", type=float, default=2, help="seconds between RSS samples")
    parser.add_argument(
        "--drain", type=float, default=120, help="seconds allowed for work in flight at the end"
    )
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 30 s, 4 hospitals, 10 radiologists, 2 coordinators, 4 slices of 64x64",
    )
    add_server_options(parser, "RADRELAY_STABLE_AGE_SECONDS=10")
    args = parser.parse_args(argv)
    backends = checked_backends(parser, args)
    args.set = SERVER_DEFAULTS + args.set
    if args.quick:
        args.seconds, args.hospitals, args.radiologists, args.coordinators = 30, 4, 10, 2
        args.slices, args.size, args.study_interval, args.poll, args.board = 4, 64, 4, 2, 2
        args.turnaround = 10
    if min(args.hospitals, args.radiologists, args.coordinators) < 1 or args.autosaves < 1:
        parser.error("at least one hospital, radiologist and coordinator, and one autosave")

    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    # pynetdicom logs every association at INFO on its own handler.
    import logging

    logging.getLogger("pynetdicom").setLevel(logging.WARNING)

    import pydicom
    import pynetdicom
    import websockets

    runs: list[Run] = []
    load_before = load_average()
    interrupted = False
    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="radrelay-load-"))
    try:
        for backend in backends:
            try:
                runs.append(run_one(backend, tmp, args))
            except Exception as exc:  # the server did not start
                log(f"{backend}: FAILED: {type(exc).__name__}: {exc}")
                failed = Run(backend, Server(backend, tmp, {}), args)
                failed.failure = f"{type(exc).__name__}: {exc}"
                runs.append(failed)
    except KeyboardInterrupt as exc:
        interrupted = True
        log(f"interrupted ({exc or 'Ctrl-C'}); cleaned up, the tables show what ran")
    finally:
        if args.keep:
            log(f"kept {tmp} (the servers' data dirs and logs)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"RadRelay load benchmark ({time.strftime('%Y-%m-%d %H:%M')})")
    print(
        f"- machine: {cores()} cores (nproc), {cpu_model()}; the server, its worker, PostgreSQL, "
        "Redis and every client (this one process) share these cores"
    )
    print(
        f"- Python {platform.python_version()}, httpx {httpx.__version__}, websockets "
        f"{websockets.__version__}, pydicom {pydicom.__version__}, pynetdicom "
        f"{pynetdicom.__version__}"
    )
    print(
        f"- {args.seconds:.0f} s per backend: {args.hospitals} hospitals (half STOW-RS, half "
        f"C-STORE), a {args.slices}-slice {args.size}x{args.size} CT every {args.study_interval:g}"
        f" s on average each; {args.radiologists} radiologists (websocket, worklist every "
        f"{args.poll:g} s, one step per poll: claim, start, {args.autosaves} autosaves, sign); "
        f"{args.coordinators} coordinators (websocket, board every {args.board:g} s, turnaround "
        f"every {args.turnaround:g} s)"
    )
    print(
        "- embedded: SQLite, file storage, in-process jobs; postgres: PostgreSQL (fresh "
        "database) + Redis with a radrelay worker; server settings: " + ", ".join(args.set)
    )
    print(f"- code: {code_version()}")
    print(
        f"- load average (1, 5, 15 min) before: {load_before}, after: {load_average()}; "
        f"the whole run took {time.perf_counter() - began:.0f}s"
    )
    if not runs:
        return 130 if interrupted else 1
    print()
    print("Throughput and CPU:")
    print()
    print(throughput_table(runs))
    print()
    print("Latency per endpoint, at the client (C-STORE: per instance, in its association):")
    print()
    print(latency_table(runs))
    errors = error_lines(runs)
    print()
    print("Errors:" if errors else "Errors: none")
    for line in errors:
        print(line)
    print()
    print("Websocket events received:")
    print()
    print(websocket_table(runs))
    print()
    print(f"Memory (RSS) of the server's processes, sampled every {args.sample:g} s:")
    print()
    print(memory_table(runs))
    print()
    print("Checks afterwards (through the API as the admin):")
    print()
    print(checks_table(runs))
    if args.quick:
        print("\n(--quick: a smoke run with fewer users and tiny studies)")
    if interrupted:
        return 130
    return 1 if any(r.failed for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
