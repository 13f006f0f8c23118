"""Object storage in an S3-compatible bucket: ``RADRELAY_STORAGE_URL=s3://bucket/prefix``.

boto3's synchronous client, called in threads exactly as ``FileStorage`` is (ingest stores in
worker processes, readers call storage through ``asyncio.to_thread``); the client is thread-safe
and made once per process.

Nothing is sent to the bucket on the receive path: a known cause of very slow ingest in other
archives. The local side, under ``Settings.s3_cache_dir`` (shared by the processes that receive
and the workers that send):

- ``pending/<key>``: received objects not yet in the bucket. ``put_file`` links a received file
  here, as ``FileStorage`` would; ``offload`` (the ``offload_objects`` job, after the commit)
  uploads them and links each into ``cached/``. The pending copy is dropped a little later, so
  that a reader that has just been given its path can still open it.
- ``cached/<key>``: copies of objects that are in the bucket, just sent or fetched for a reader;
  trimmed to ``s3_cache_bytes``, least recently used first. Nothing unsent is ever trimmed.

Reads look in ``cached/``, then ``pending/``, then the bucket: ``open`` streams from it,
``fetch`` downloads into ``cached/`` for readers that need a file (pydicom, frame offsets). An
object in none of them raises ``ObjectMissing``; a bucket that cannot be reached,
``StorageError`` (503, retry later). ``sweep`` (periodic) finds what a crash between commit and
enqueue, or an outage, left waiting, so nothing stays only in the cache.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import urlparse

from radrelay.kit.storage import FileStorage, ObjectMissing, StorageError

if TYPE_CHECKING:
    from radrelay.config import Settings

# A pending copy already sent is dropped this long after it was linked into cached/: readers
# open a path within milliseconds of being given it.
DROP_SENT_AFTER_SECONDS = 10.0
# A cached copy read again is marked as used at most this often (one utime, not one per frame).
_TOUCH_SECONDS = 600.0
_SEND_THREADS = 8
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


@dataclass(frozen=True)
class SweepResult:
    unsent: frozenset[str]  # first key components (h<hospital>) that have objects waiting
    dropped: int  # pending copies removed because the bucket has them
    trimmed: int  # cached copies removed to keep within the budget


class S3Storage:
    def __init__(
        self,
        bucket: str,
        prefix: str,
        cache_dir: Path,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        create_bucket: bool = False,
        cache_bytes: int = 20 * 1024**3,
        unsent_after_seconds: float = 60.0,
    ):
        if not bucket:
            raise ValueError("an s3:// storage URL names its bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.pending = FileStorage(cache_dir / "pending")
        self.cached = FileStorage(cache_dir / "cached")
        self.cache_bytes = cache_bytes
        self.unsent_after_seconds = unsent_after_seconds
        self.create_bucket = create_bucket
        self._endpoint_url = endpoint_url
        self._region = region
        self._access_key = access_key
        self._secret_key = secret_key
        self._client: Any = None
        self._lock = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}
        self._again: dict[str, bool] = {}  # prefixes being sent: whether to look once more
        # Offload jobs run here, not in the event loop's default threads, which readers and
        # health checks need while the store is slow.
        self.executor = ThreadPoolExecutor(4, thread_name_prefix="s3-offload")

    @classmethod
    def from_settings(cls, url: str, settings: Settings) -> S3Storage:
        parsed = urlparse(url)
        return cls(
            parsed.netloc,
            parsed.path,
            settings.s3_cache_dir,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            create_bucket=settings.s3_create_bucket,
            cache_bytes=settings.s3_cache_bytes,
            unsent_after_seconds=settings.s3_sweep_seconds,
        )

    # --- the bucket -------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    config = Config(
                        # Compatible stores (SeaweedFS, MinIO) answer at one host: path style.
                        s3={"addressing_style": "path"} if self._endpoint_url else {},
                        retries={"mode": "standard", "max_attempts": 3},
                        connect_timeout=5,
                        read_timeout=60,
                        max_pool_connections=32,
                    )
                    self._client = boto3.session.Session().client(
                        "s3",
                        endpoint_url=self._endpoint_url,
                        region_name=self._region,
                        aws_access_key_id=self._access_key,
                        aws_secret_access_key=self._secret_key,
                        config=config,
                    )
        return self._client

    @property
    def _transfer(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        # Objects up to 64 MiB (nearly every DICOM instance) in one request; larger in parts.
        return TransferConfig(multipart_threshold=64 * 1024**2, multipart_chunksize=64 * 1024**2)

    def object_name(self, key: str) -> str:
        self.pending._path(key)  # the same key rules as files: relative, no "..", no "//"
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextlib.contextmanager
    def _remote(self, doing: str, key: str | None = None) -> Iterator[None]:
        """boto3's errors as ours: a missing ``key`` is ``ObjectMissing``, anything else a
        storage that is unavailable (503). Keys hold DICOM UIDs, and boto3's messages name
        them (the URL, the file): the original is dropped, only its kind and code are kept."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if key is not None and code in _MISSING:
                raise ObjectMissing(key) from None
            raise StorageError(f"object storage refused to {doing} ({code})") from None
        except (BotoCoreError, Boto3Error) as exc:
            raise StorageError(f"object storage could not {doing} ({type(exc).__name__})") from None

    def check(self) -> None:
        from botocore.exceptions import ClientError

        self.pending.check()
        with self._remote("find the bucket"):
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code not in _MISSING:
                    raise
                if not self.create_bucket:
                    raise StorageError(
                        f"the bucket {self.bucket!r} does not exist (create it, or set "
                        "RADRELAY_S3_CREATE_BUCKET=true for a development store)"
                    ) from None
                with contextlib.suppress(ClientError):  # another process made it just now
                    self.client.create_bucket(Bucket=self.bucket)
                self.client.head_bucket(Bucket=self.bucket)

    # --- the Storage interface --------------------------------------------------------------

    def put_file(self, key: str, src: Path) -> bool:
        """Into the receive cache only; ``offload`` sends it. False if a copy is already here
        (the bucket itself is not asked: no network on the receive path)."""
        if self.cached.local_path(key) is not None:
            return False
        return self.pending.put_file(key, src)

    def local_path(self, key: str) -> Path | None:
        # cached/ first: once an object is there, its pending copy may be dropped at any time.
        path = self.cached._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            return self.pending.local_path(key)
        if time.time() - st.st_mtime > _TOUCH_SECONDS:
            with contextlib.suppress(OSError):
                os.utime(path)  # least recently used goes first when the cache is trimmed
        return path

    def open(self, key: str) -> BinaryIO:
        path = self.local_path(key)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):  # trimmed just now: the bucket has it
                return path.open("rb")
        with self._remote("read an object", key):
            body = self.client.get_object(Bucket=self.bucket, Key=self.object_name(key))["Body"]
        return cast(BinaryIO, body)

    def exists(self, key: str) -> bool:
        if self.local_path(key) is not None:
            return True
        from botocore.exceptions import ClientError

        with self._remote("look for an object"):
            try:
                self.client.head_object(Bucket=self.bucket, Key=self.object_name(key))
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code", "")) in _MISSING:
                    return False
                raise
        return True

    def delete(self, key: str) -> None:
        self.pending.delete(key)
        self.cached.delete(key)
        with self._remote("delete an object"):
            self.client.delete_object(Bucket=self.bucket, Key=self.object_name(key))

    def fetch(self, key: str) -> Path:
        path = self.local_path(key)
        if path is not None:
            return path
        # One download per object however many readers ask for it at once (a viewer asks for
        # the frames of one object in parallel).
        with self._lock:
            lock = self._fetching.setdefault(key, threading.Lock())
        try:
            with lock:
                return self.local_path(key) or self._download(key)
        finally:
            with self._lock:
                self._fetching.pop(key, None)

    def _download(self, key: str) -> Path:
        self.cached.root.mkdir(parents=True, exist_ok=True)
        tmp = self.cached.root / f".fetch.{secrets.token_hex(8)}.part"
        try:
            with self._remote("read an object", key):
                self.client.download_file(
                    self.bucket, self.object_name(key), str(tmp), Config=self._transfer
                )
            # fsynced and linked like any stored file: a crash never leaves a torn copy that
            # would be served later under the object's name.
            self.cached.put_file(key, tmp)
        finally:
            tmp.unlink(missing_ok=True)
        return self.cached._path(key)

    # --- moving to the bucket ---------------------------------------------------------------

    def offload(self, prefix: str) -> int:
        """Send every object waiting under ``prefix`` (a first key component: ``h3``) to the
        bucket, and drop pending copies sent a while ago. Safe to run twice, or at once in
        several processes: an object sent twice is the same bytes under the same name.
        Returns how many objects this call sent.

        In one process one thread works on a prefix at a time: a call that finds one at work
        asks it to look once more and returns at once, so jobs piling up while the store is
        slow or down hold no threads."""
        with self._lock:
            if prefix in self._again:
                self._again[prefix] = True
                return 0
            self._again[prefix] = False
        sent = 0
        try:
            while True:
                sent += self._offload_once(prefix)
                with self._lock:
                    if not self._again[prefix]:
                        return sent
                    self._again[prefix] = False
        finally:
            with self._lock:
                self._again.pop(prefix, None)

    def _offload_once(self, prefix: str) -> int:
        waiting = [key for key, _ in self._scan_pending(prefix, time.time())[0]]
        if waiting:
            with ThreadPoolExecutor(_SEND_THREADS, thread_name_prefix="s3-send") as pool:
                list(pool.map(self._send, waiting))
        return len(waiting)

    def _send(self, key: str) -> None:
        src = self.pending._path(key)
        try:
            with self._remote("store an object"):
                self.client.upload_file(
                    str(src), self.bucket, self.object_name(key), Config=self._transfer
                )
            self.cached.put_file(key, src)
        except FileNotFoundError:
            return  # another process sent it and dropped the pending copy meanwhile

    def _scan_pending(self, prefix: str, now: float) -> tuple[list[tuple[str, float]], int]:
        """The pending copies under ``prefix``: those not sent yet (key, modification time), and
        how many already sent were dropped (once ``DROP_SENT_AFTER_SECONDS`` old)."""
        unsent: list[tuple[str, float]] = []
        dropped = 0
        for key, path in self._pending_files(prefix):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if not self.cached._path(key).exists():
                unsent.append((key, st.st_mtime))
            elif now - st.st_ctime > DROP_SENT_AFTER_SECONDS:
                path.unlink(missing_ok=True)
                dropped += 1
        return unsent, dropped

    def _pending_files(self, prefix: str) -> Iterator[tuple[str, Path]]:
        root = self.pending.root
        start = self.pending._path(prefix) if prefix else root
        for dirpath, _, filenames in os.walk(start):
            for name in filenames:
                if not name.startswith("."):  # a copy still being written
                    path = Path(dirpath, name)
                    yield path.relative_to(root).as_posix(), path

    def sweep(self) -> SweepResult:
        """What a crash or an outage left behind: the first key components with objects that
        have waited more than ``unsent_after_seconds`` (their jobs are sent again), pending
        copies already sent (dropped), empty folders (removed), and the read cache trimmed."""
        now = time.time()
        pending, dropped = self._scan_pending("", now)
        unsent = {
            key.split("/", 1)[0]
            for key, modified in pending
            if now - modified > self.unsent_after_seconds
        }
        _remove_empty_folders(self.pending.root, now)
        return SweepResult(frozenset(unsent), dropped, self._trim(now))

    def _trim(self, now: float) -> int:
        root = self.cached.root
        copies: list[tuple[float, int, Path]] = []
        total = 0
        for dirpath, _, filenames in os.walk(root):
            for name in filenames:
                path = Path(dirpath, name)
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                if name.startswith("."):
                    if now - st.st_mtime > 3600:  # a download a crash left unfinished
                        path.unlink(missing_ok=True)
                    continue
                copies.append((st.st_mtime, st.st_size, path))
                total += st.st_size
        trimmed = 0
        if total > self.cache_bytes:
            # Down to 90 %, so the next sweeps do not trim a file or two each time.
            target = self.cache_bytes * 0.9
            for _, size, path in sorted(copies, key=lambda c: c[0]):
                if total <= target:
                    break
                path.unlink(missing_ok=True)
                total -= size
                trimmed += 1
        _remove_empty_folders(root, now)
        return trimmed


def _remove_empty_folders(root: Path, now: float) -> None:
    """Folders left empty for a while (FileStorage makes a folder again if it loses this race
    with a new object)."""
    if not root.exists():
        return
    for dirpath, _, filenames in os.walk(root, topdown=False):
        path = Path(dirpath)
        if path == root or filenames:
            continue
        with contextlib.suppress(OSError):  # not empty after all, or gone: next time
            if now - path.stat().st_mtime > DROP_SENT_AFTER_SECONDS:
                path.rmdir()
