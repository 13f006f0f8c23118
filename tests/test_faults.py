"""Faults in a scale-out deployment (tests/cluster.py: two APIs, two gateways, two workers, each
talking to PostgreSQL and Redis through a proxy the test controls), and a full disk.

- ``kill -9`` of an API in the middle of a STOW-RS request, of a worker in the middle of routing
  and of delivering a report, of a gateway in the middle of an association (test_crash.py kills
  the one process of the embedded default mid-series; here a gateway dies while the other goes
  on with the same study). Then: what was acknowledged is there, nothing half-written is
  visible, the work resumes and is done once (a delivery interrupted mid-send goes again as the
  same DICOM objects, and its row counts the attempts).
- PostgreSQL, then Redis, taken away for a while (connections reset, new ones refused) without
  touching the shared servers: ingest answers 503 / 0xA700 instead of accepting what it cannot
  keep, ``/api/health`` says which dependency is down, and everything recovers by itself.
- A full receive area / file storage (a small tmpfs): 507 and 0xA700, nothing corrupted, and
  sending again once there is room stores everything once.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import EncapsulatedPDFStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt

from cluster import (
    REDIS_URL,
    SCALEOUT,
    SUCCESS,
    Cluster,
    Proc,
    TcpProxy,
    cluster,
    needs_scaleout,
    stored_sops,
    stow,
)
from conftest import Hospital, World, free_port, wait_until
from helpers import part10, requests_only, study, upload
from test_reports import sign, start, written
from test_worklist import reader

OUT_OF_RESOURCES = 0xA700


@dataclass
class System:
    c: Cluster
    apis: list[Proc]
    gateways: list[Proc]
    workers: list[Proc]
    database: TcpProxy
    redis: TcpProxy

    def world(self) -> World:
        return self.c.world()

    def wait_for_passes(self, cron: str, count: int) -> None:
        """Until the workers (either of them: arq runs each tick once) finished ``count`` more
        runs of a periodic job."""

        def done() -> int:
            return sum(w.log_path.read_text().count(f":cron:{cron} ●") for w in self.workers)

        seen = done()
        wait_until(lambda: done() >= seen + count, what=f"{count} more runs of {cron}")


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with cluster(
        tmp_path_factory.mktemp("faults"),
        # An attempt whose worker died is given up after 3 s without a sign of life.
        RADRELAY_DELIVERY_CLAIM_SECONDS="3",
        # A Redis reply later than this is taken for a dead connection (test_silent_redis).
        RADRELAY_REDIS_READ_TIMEOUT_SECONDS="3",
    ) as c:
        database, database_url = TcpProxy.to_url(c.database_url)
        redis, redis_url = TcpProxy.to_url(REDIS_URL)  # type: ignore[arg-type]
        through = {"RADRELAY_DATABASE_URL": database_url, "RADRELAY_REDIS_URL": redis_url}
        apis = [c.api(f"api{n}", start=False, **through) for n in (1, 2)]
        gateways = [c.gateway(f"gateway{n}", start=False, **through) for n in (1, 2)]
        workers = [c.worker(f"worker{n}", start=False, **through) for n in (1, 2)]
        procs = (*apis, *gateways, *workers)
        for proc in procs:
            proc.start(wait=False)
        for proc in procs:
            proc.wait_ready()
        try:
            yield System(c, apis, gateways, workers, database, redis)
        finally:
            c.stop()  # before the proxies go: a worker waits for Redis as long as it is away
            database.close()
            redis.close()


# --- small tools ---------------------------------------------------------------------------


def indexed(c: Cluster, sops: set[str] | list[str]) -> dict[str, int]:
    """How many index rows each of these SOP Instance UIDs has (absent: none)."""
    rows = c.sql(
        "SELECT sop_instance_uid, count(*) FROM instances WHERE sop_instance_uid = ANY(%s) "
        "GROUP BY sop_instance_uid",
        list(sops),
    )
    return {sop: n for sop, n in rows}


def assert_whole(c: Cluster, hospital: Hospital, sent: list[Dataset]) -> None:
    """Every file under the hospital's storage is a whole object as it was sent, indexed or
    not (a crash may leave a stored, unindexed file: never a partial one)."""
    by_sop = {ds.SOPInstanceUID: ds for ds in sent}
    for path in (c.storage_root / f"h{hospital.id}").rglob("*.dcm"):
        stored = pydicom.dcmread(path)
        original = by_sop[stored.SOPInstanceUID]
        assert stored.PixelData == original.PixelData, path.name


def files_of(c: Cluster, hospital: Hospital, sop: str) -> list[Path]:
    return list((c.storage_root / f"h{hospital.id}").rglob(f"{sop}.*"))


def ready_decisions(c: Cluster, study_uid: str) -> int:
    return int(
        c.sql(
            "SELECT count(*) FROM routing_decisions d JOIN cases k ON k.id = d.case_id "
            "JOIN studies s ON s.id = k.study_pk "
            "WHERE s.study_instance_uid = %s AND d.trigger = 'ready'",
            study_uid,
        )[0][0]
    )


def routed_once(c: Cluster, study_uid: str) -> None:
    wait_until(lambda: ready_decisions(c, study_uid), timeout=30, what="the case's first routing")
    assert ready_decisions(c, study_uid) == 1


def case_of(c: Cluster, study_uid: str) -> tuple[str, int | None]:
    """The status and holder of a study's case."""
    [(status, reader_id)] = c.sql(
        "SELECT k.status, k.reader_id FROM cases k JOIN studies s ON s.id = k.study_pk "
        "WHERE s.study_instance_uid = %s",
        study_uid,
    )
    return status, reader_id


def case_state(c: Cluster, case_id: int) -> tuple[str, int | None]:
    [(status, reader_id)] = c.sql("SELECT status, reader_id FROM cases WHERE id = %s", case_id)
    return status, reader_id


class Association:
    """One association of a hospital's modality to a gateway, kept open across a test."""

    def __init__(self, port: int, calling: str, datasets: list[Dataset], timeout: float = 30):
        self.ae = AE(ae_title=calling)
        self.ae.acse_timeout = self.ae.dimse_timeout = self.ae.network_timeout = timeout
        self.ae.add_requested_context(
            datasets[0].SOPClassUID, datasets[0].file_meta.TransferSyntaxUID
        )
        self.assoc = requests_only(self.ae.associate("127.0.0.1", port, ae_title="RADRELAY"))

    def store(self, ds: Dataset) -> int | None:
        if not self.assoc.is_established:
            return None
        rsp = self.assoc.send_c_store(ds)
        return int(rsp.Status) if "Status" in rsp else None

    def close(self) -> None:
        if self.assoc.is_established:
            self.assoc.release()
        self.ae.shutdown()


def uploaded(h: Hospital, api: Proc, datasets: list[Dataset]) -> httpx.Response:
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {h.tech.token}"}) as hc:
        return upload(hc, [(f"{i}.dcm", part10(ds)) for i, ds in enumerate(datasets)])


# --- crashes -------------------------------------------------------------------------------


@needs_scaleout
class TestKilled:
    def test_api_mid_stow(self, system: System) -> None:
        c, (api1, api2) = system.c, system.apis
        h = system.world().hospital()
        before, slow, meanwhile = (study("CT", slices=n, size=64) for n in (3, 16, 4))
        assert stow(api1, h.tech.token, before).status_code == 200
        # A STOW-RS request whose second half waits until the API has stored its first half.
        boundary = f"b{uuid.uuid4().hex}"
        go_on = threading.Event()

        def body() -> Iterator[bytes]:
            for i, ds in enumerate(slow):
                if i == len(slow) // 2:
                    go_on.wait(30)
                yield f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                yield part10(ds) + b"\r\n"
            yield f"--{boundary}--\r\n".encode()

        answer: list[Any] = []

        def send() -> None:
            try:
                answer.append(
                    httpx.post(
                        f"{api1.url}/dicomweb/studies",
                        content=body(),
                        headers={
                            "Authorization": f"Bearer {h.tech.token}",
                            "Content-Type": f'multipart/related; type="application/dicom"; '
                            f'boundary="{boundary}"',
                        },
                        timeout=30,
                    )
                )
            except httpx.HTTPError as exc:
                answer.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        slow_uid = slow[0].StudyInstanceUID
        wait_until(
            lambda: (
                len(list((c.storage_root / f"h{h.id}" / slow_uid).rglob("*.dcm")))
                >= len(slow) // 2 - 1
            ),
            what="the first half of the request stored",
        )
        api1.kill()
        go_on.set()
        sender.join(30)
        # The sender got no success: nothing of the request may count as received.
        assert isinstance(answer[0], httpx.HTTPError), answer
        # The other API went on taking studies while this one was dead.
        r = stow(api2, h.tech.token, meanwhile)
        assert r.status_code == 200 and len(stored_sops(r)) == len(meanwhile)

        acknowledged = {ds.SOPInstanceUID for ds in before + meanwhile}
        assert indexed(c, acknowledged) == dict.fromkeys(acknowledged, 1)
        # Nothing half-written is visible: no row, no study, no case of the cut request; the
        # files it left in storage are whole objects, which its resend will reuse.
        assert indexed(c, {ds.SOPInstanceUID for ds in slow}) == {}
        assert c.sql("SELECT id FROM studies WHERE study_instance_uid = %s", slow_uid) == []
        assert_whole(c, h, before + slow + meanwhile)

        api1.start()
        r = stow(api1, h.tech.token, slow)
        assert r.status_code == 200 and len(stored_sops(r)) == len(slow), r.text
        assert indexed(c, {ds.SOPInstanceUID for ds in slow}) == {
            ds.SOPInstanceUID: 1 for ds in slow
        }
        for ds in slow:
            assert len(files_of(c, h, ds.SOPInstanceUID)) == 1
        routed_once(c, slow_uid)

    def test_gateway_mid_association(self, system: System) -> None:
        """One study over two associations to the two gateways; gateway 1 dies mid-way. The
        other half goes on through gateway 2; the sender sends its half again once gateway 1
        is back, and the study is whole, each object once."""
        c, (gw1, gw2) = system.c, system.gateways
        h = system.world().hospital()
        datasets = study("CT", slices=40, size=64)
        # pynetdicom learns that its peer died from the DIMSE timeout, as a real sender does;
        # a C-STORE here takes milliseconds.
        first = Association(gw1.dicom_port, h.ae_title, datasets, timeout=5)
        second = Association(gw2.dicom_port, h.ae_title, datasets)
        acknowledged: set[str] = set()

        def send(assoc: Association, part: list[Dataset]) -> None:
            for ds in part:
                with contextlib.suppress(RuntimeError):  # the association died under it
                    if assoc.store(ds) == SUCCESS:
                        acknowledged.add(ds.SOPInstanceUID)

        threads = [
            threading.Thread(target=send, args=(first, datasets[:30])),
            threading.Thread(target=send, args=(second, datasets[20:])),
        ]
        for t in threads:
            t.start()
        by_first = {ds.SOPInstanceUID for ds in datasets[:20]}
        wait_until(
            lambda: len(acknowledged & by_first) >= 8, interval=0.01, what="eight acknowledged"
        )
        gw1.kill()
        for t in threads:
            t.join(60)
        first.close()
        second.close()
        assert {ds.SOPInstanceUID for ds in datasets[20:]} <= acknowledged
        # Fewer: the kill came too soon to prove anything; all: it came too late.
        assert 8 <= len(acknowledged & by_first) < 20
        # Every acknowledged object is indexed, and whatever was stored is whole.
        assert set(indexed(c, acknowledged)) == acknowledged
        assert_whole(c, h, datasets)

        gw1.start()
        again = Association(gw1.dicom_port, h.ae_title, datasets)
        assert [again.store(ds) for ds in datasets[:30]] == [SUCCESS] * 30
        again.close()
        assert indexed(c, {ds.SOPInstanceUID for ds in datasets}) == {
            ds.SOPInstanceUID: 1 for ds in datasets
        }
        for ds in datasets:
            assert len(files_of(c, h, ds.SOPInstanceUID)) == 1
        [(count, flags)] = c.sql(
            "SELECT s.number_of_instances, k.flags FROM studies s "
            "JOIN cases k ON k.study_pk = s.id WHERE s.study_instance_uid = %s",
            datasets[0].StudyInstanceUID,
        )
        assert count == len(datasets) and "sop_conflict" not in flags
        routed_once(c, datasets[0].StudyInstanceUID)

    def test_worker_mid_routing(self, system: System) -> None:
        """A worker is killed in the middle of a routing transaction (the case already updated,
        its reader's hold being written); the other worker routes the case, once."""
        c, world = system.c, system.world()
        h = world.hospital()
        dr = reader(world, [h], {"abdominal": 2}, state="offline")
        r = uploaded(h, system.apis[0], study("CT", slices=2, size=32))
        assert r.status_code == 200, r.text
        [case_id] = r.json()["case_ids"]
        # Nobody online: the first routing finds no reader and the case waits.
        wait_until(
            lambda: c.sql("SELECT 1 FROM routing_decisions WHERE case_id = %s", case_id),
            what="the first routing",
        )
        with psycopg.connect(c.database_url.replace("+asyncpg", "")) as hold:
            # An uncommitted hold on the case: the routing that assigns it next writes the
            # reader's hold after updating the case, and waits there on the unique index.
            hold.execute(
                "INSERT INTO case_assignments (case_id, user_id, kind, active, reason, "
                "created_at) VALUES (%s, %s, 'assigned', true, 'test', now())",
                (case_id, dr.id),
            )
            # The reader comes online: the SLA watch routes the waiting case at once.
            assert dr.api.put("/api/experts/me/state", json={"state": "online"}).status_code == 200
            port = wait_until(lambda: blocked_routing(c), what="a routing waiting to write")
            client = system.database.clients[port]
            [victim] = [w for w in system.workers if w.owns_connection_from(client)]
            victim.kill()
            hold.rollback()

        wait_until(lambda: case_state(c, case_id) == ("assigned", dr.id), what="the case routed")
        victim.start()
        # Two more SLA watch passes, by either worker, change nothing.
        system.wait_for_passes("sla_watch", 2)
        assert case_state(c, case_id) == ("assigned", dr.id)
        assert c.sql(
            "SELECT count(*) FROM routing_decisions WHERE case_id = %s AND applied "
            "AND mode = 'push'",
            case_id,
        ) == [(1,)]
        assert c.sql(
            "SELECT user_id FROM case_assignments WHERE case_id = %s AND active", case_id
        ) == [(dr.id,)]

    def test_worker_mid_delivery(self, system: System) -> None:
        """The worker sending a signed report to the hospital's PACS is killed while the PACS
        holds the C-STORE. The delivery is sent again after its claim lapses, as the same
        DICOM object (same SOP Instance UID: the PACS keeps one), and recorded as sent on its
        second attempt; nothing is sent a third time."""
        c, world = system.c, system.world()
        h = world.hospital()
        with blocking_pacs() as pacs:
            r = world.admin.post(
                f"/api/hospitals/{h.code}/delivery-endpoints",
                json={
                    "kind": "dicom",
                    "name": "PACS",
                    "config": {"ae_title": PACS_AE, "host": "127.0.0.1", "port": pacs.port},
                },
            )
            assert r.status_code == 201, r.text
            dr = reader(world, [h], {"abdominal": 2})
            r = uploaded(h, system.apis[1], study("CT", slices=2, size=32))
            [case_id] = r.json()["case_ids"]
            wait_until(lambda: case_state(c, case_id)[1] == dr.id, what="the case assigned")
            assert dr.api.post(f"/api/cases/{case_id}/claim").status_code == 200
            report = start(dr, case_id)
            written(dr, report)
            sign(dr, report["id"])

            assert pacs.arrived.wait(30), "no delivery reached the PACS"
            [victim] = [w for w in system.workers if w.owns_connection_from(pacs.peer_port)]
            victim.kill()
            pacs.release.set()

            def delivery() -> dict[str, Any]:
                [row] = h.tech.get(f"/api/cases/{case_id}/deliveries").json()
                return row  # type: ignore[no-any-return]

            try:
                wait_until(lambda: delivery()["status"] == "sent", what="the delivery sent again")
            finally:
                # The next tests need both workers, whatever happened here.
                victim.start()
            system.wait_for_passes("delivery_retry", 2)
            assert delivery()["attempts"] == 2
            assert len(pacs.received) == 2
            once, again = pacs.received
            assert once.SOPInstanceUID == again.SOPInstanceUID
            assert once.EncapsulatedDocument == again.EncapsulatedDocument


def blocked_routing(c: Cluster) -> int | None:
    """The client port of a database connection whose routing waits to write a reader's hold."""
    rows = c.sql(
        "SELECT client_port FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO case_assignments%%'"
    )
    return int(rows[0][0]) if rows else None


PACS_AE = "HOSPACS"


@dataclass
class BlockingPacs:
    """A hospital PACS (pynetdicom Storage SCP on loopback) that keeps every object it gets
    and holds the first C-STORE until ``release``."""

    port: int
    received: list[Dataset]
    arrived: threading.Event
    release: threading.Event
    peer_port: int = 0


@contextlib.contextmanager
def blocking_pacs() -> Iterator[BlockingPacs]:
    pacs = BlockingPacs(free_port(), [], threading.Event(), threading.Event())
    ae = AE(ae_title=PACS_AE)
    ae.add_supported_context(
        EncapsulatedPDFStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
    )

    def on_store(event: evt.Event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        pacs.received.append(ds)
        if len(pacs.received) == 1:
            pacs.peer_port = int(event.assoc.requestor.port)
            pacs.arrived.set()
            pacs.release.wait(30)
        return 0x0000

    server = ae.start_server(
        ("127.0.0.1", pacs.port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    try:
        yield pacs
    finally:
        pacs.release.set()
        server.shutdown()


# --- outages ---------------------------------------------------------------------------------


@needs_scaleout
class TestOutages:
    @pytest.mark.parametrize("dependency", ["database", "queue"])
    def test_ingest_refuses_then_recovers(self, system: System, dependency: str) -> None:
        c, (api1, api2), (gw1, gw2) = system.c, system.apis, system.gateways
        proxy = system.database if dependency == "database" else system.redis
        world = system.world()
        h = world.hospital()
        dr = reader(world, [h], {"abdominal": 2})
        datasets = study("CT", slices=6, size=32)
        modality = Association(gw1.dicom_port, h.ae_title, datasets)
        assert modality.store(datasets[0]) == SUCCESS
        assert stow(api2, h.tech.token, datasets[1:2]).status_code == 200

        proxy.cut()
        try:
            for api in (api1, api2):
                r = stow(api, h.tech.token, datasets[2:4])
                assert r.status_code == 503 and r.headers["retry-after"], r.text
                message = r.json()["message"]
                assert ("database" if dependency == "database" else "job queue") in message
                assert uploaded(h, api, datasets[4:5]).status_code == 503
                health = httpx.get(f"{api.url}/api/health", timeout=10)
                assert health.status_code == 503
                checks = health.json()["checks"]
                assert checks[dependency].startswith("failed")
                assert {k for k, v in checks.items() if v == "ok"} == {
                    "database",
                    "queue",
                    "storage",
                } - {dependency}
            assert modality.store(datasets[5]) == OUT_OF_RESOURCES
            # A new association: refused for now (A-ASSOCIATE-RJ rejected-transient) without
            # the database, its C-STOREs answered 0xA700 without the queue.
            late = Association(gw2.dicom_port, h.ae_title, datasets)
            if dependency == "database":
                assert late.assoc.is_rejected
                assert late.assoc.acceptor.primitive.result == 0x02
            else:
                assert late.store(datasets[5]) == OUT_OF_RESOURCES
            late.close()
            # Nothing refused was kept.
            assert indexed(c, {ds.SOPInstanceUID for ds in datasets[2:]}) == {}
        finally:
            proxy.restore()

        for proc in (api1, api2):
            wait_until(
                lambda proc=proc: httpx.get(f"{proc.url}/api/health").status_code == 200,
                what=f"{proc.name} healthy again",
            )
        assert all(p.alive() for p in (*system.apis, *system.gateways, *system.workers))
        # The same association carries on; the refused objects are sent again and kept once.
        assert modality.store(datasets[5]) == SUCCESS
        modality.close()
        r = stow(api1, h.tech.token, datasets[2:5])
        assert r.status_code == 200, r.text
        assert indexed(c, {ds.SOPInstanceUID for ds in datasets}) == {
            ds.SOPInstanceUID: 1 for ds in datasets
        }
        # The workers carried on too: the case is routed, once.
        routed_once(c, datasets[0].StudyInstanceUID)
        wait_until(
            lambda: case_of(c, datasets[0].StudyInstanceUID)[1] == dr.id, what="the case assigned"
        )

    def test_silent_redis(self, system: System) -> None:
        """Every open Redis connection goes silent: nothing answers and nothing is closed, as
        when a failover or a NAT drops connections without a reset. Each process's next
        command on one times out and goes again on a new connection, so without a restart
        the workers' periodic jobs go on, an API takes a study again and its case is routed."""
        c, api = system.c, system.apis[0]
        world = system.world()
        h = world.hospital()
        dr = reader(world, [h], {"abdominal": 2})
        datasets = study("CT", slices=2, size=32)
        system.redis.stall()
        try:
            system.wait_for_passes("sla_watch", 2)
            # At most the first try meets a silent connection: 503, nothing kept.
            wait_until(
                lambda: stow(api, h.tech.token, datasets).status_code == 200, what="a study taken"
            )
            wait_until(
                lambda: case_of(c, datasets[0].StudyInstanceUID)[1] == dr.id,
                what="the case assigned",
            )
        finally:
            system.redis.unstall()
        # Routed once, by whichever path came first: the ready case's routing job (tried
        # again if a dead connection failed it) or the SLA watch's pass over waiting cases.
        assert c.sql(
            "SELECT count(*) FROM routing_decisions d JOIN cases k ON k.id = d.case_id "
            "JOIN studies s ON s.id = k.study_pk WHERE s.study_instance_uid = %s AND d.applied",
            datasets[0].StudyInstanceUID,
        ) == [(1,)]


# --- a full disk -----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs (root only); skipped where it cannot be mounted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


class TestDiskFull:
    def test_refused_cleanly_then_stored_once(self, tmp_path: Path, small_disk: Path) -> None:
        """The data directory (receive area, file storage) is on a full disk; the database is
        not (PostgreSQL, or SQLite elsewhere)."""
        with cluster(tmp_path, data_dir=small_disk / "data") as c:
            if SCALEOUT:
                api, gw = c.api("api"), c.gateway("gateway")
                c.worker("worker")
                port = gw.dicom_port
            else:
                api = c.serve("serve")
                port = api.dicom_port
            h = c.world().hospital()
            datasets = study("CT", slices=6, size=128)
            assert stow(api, h.tech.token, datasets[:1]).status_code == 200
            filler = small_disk / "filler"
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
            for block in (65536, 4096):  # to the last page
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, b"\0" * block)
            os.close(fd)

            r = stow(api, h.tech.token, datasets[1:3])
            assert r.status_code == 507, r.text
            assert r.json()["error"] == "insufficient_storage"
            assert "disk is full" in r.json()["message"] and r.headers["retry-after"]
            r = uploaded(h, api, datasets[3:4])
            assert r.status_code == 507 and r.json()["error"] == "insufficient_storage"
            modality = Association(port, h.ae_title, datasets)
            assert [modality.store(ds) for ds in datasets[3:5]] == [OUT_OF_RESOURCES] * 2
            # The association is still usable once there is room again.
            filler.unlink()
            assert modality.store(datasets[3]) == SUCCESS
            modality.close()
            r = stow(api, h.tech.token, datasets)
            assert r.status_code == 200, r.text

            # Everything once, every stored file whole, no leftovers in the receive area.
            sops = [ds.SOPInstanceUID for ds in datasets]
            if SCALEOUT:
                assert indexed(c, set(sops)) == dict.fromkeys(sops, 1)
            else:
                found = httpx.get(
                    f"{api.url}/dicomweb/studies/{datasets[0].StudyInstanceUID}/instances",
                    headers={"Authorization": f"Bearer {h.tech.token}"},
                ).json()
                assert sorted(i["00080018"]["Value"][0] for i in found) == sorted(sops)
            for sop in sops:
                assert len(files_of(c, h, sop)) == 1
            assert_whole(c, h, datasets)
            leftovers = [p for p in (c.data_dir / "tmp").rglob("*") if p.is_file()]
            assert leftovers == [], leftovers
