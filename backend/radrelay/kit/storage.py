"""Where DICOM files live, behind one small interface.

Keys are relative, slash-separated paths chosen by the caller. ``put_file`` is durable and
atomic: the object either exists whole under its key or not at all, so an index row that names a
key is only ever committed after the bytes are safe. Objects are immutable once written.

``FileStorage`` (``file://`` URL) is the embedded default. ``kit.s3.S3Storage`` (``s3://bucket/
prefix``) keeps objects in an S3-compatible bucket behind the same methods: ``put_file`` lands in
a local receive cache and a job sends it to the bucket later. Nothing outside this module
touches paths directly except through ``local_path`` (a local copy if there is one now, else
``None``) and ``fetch`` (a local copy, downloaded first if need be).

An index row whose object is nowhere is damage, not an outage: ``ObjectMissing`` says so to the
client and in the log, naming the object by a reference that carries no DICOM UID.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import urlparse

from radrelay.errors import AppError, InsufficientStorage, ServiceUnavailable

if TYPE_CHECKING:
    from radrelay.config import Settings

log = logging.getLogger(__name__)


class StorageError(ServiceUnavailable):
    """The storage cannot be written or reached now: the client should retry later."""


def disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def disk_error(exc: OSError, doing: str) -> AppError:
    """What a failed local write means for the client: a full disk is ``InsufficientStorage``
    (507: nothing kept, retry later) for the whole request, not a per-object failure that would
    read as the object's fault; anything else is a ``StorageError`` (503)."""
    if disk_full(exc):
        # Logged for the administrator, without the path (storage keys hold DICOM UIDs).
        log.error("disk full: could not %s", doing)
        return InsufficientStorage()
    return StorageError(f"could not {doing}: {exc.strerror or exc}")


class ObjectMissing(AppError):
    """An object the index names is in no storage (not in the local cache, not in the bucket).
    Not a passing outage, so not 503: someone has to restore it or have it sent again."""

    status_code = 500
    code = "object_missing"

    def __init__(self, key: str):
        self.reference = reference(key)
        super().__init__(
            f"A stored object ({self.reference}) is missing from storage, so this cannot be "
            "answered in full. The administrator should restore it from a backup or have the "
            "hospital send the study again."
        )
        log.error("object %s is missing from storage", self.reference)


_DIGEST_NAME = re.compile(r"[.-]([0-9a-f]{16})\.[a-z]+$")


def reference(key: str) -> str:
    """How logs and errors name an object: its first key component (the hospital) and the
    content digest in its file name, never the study, series or SOP Instance UIDs the key
    holds. The instance is found again by ``sha256 LIKE '<digest>%'``."""
    parts = key.split("/")
    found = _DIGEST_NAME.search(parts[-1])
    digest = found.group(1) if found else hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{parts[0]}/.../{digest}" if len(parts) > 1 else digest


class Storage(Protocol):
    def put_file(self, key: str, src: Path) -> bool:
        """Move ``src`` (a complete local file, fsynced by the caller or not) under ``key``.
        Returns False if the key already existed (immutable: the existing object is kept)."""
        ...

    def open(self, key: str) -> BinaryIO:
        """The object for reading (streamed when it is remote). ``ObjectMissing`` if none."""
        ...

    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...

    def local_path(self, key: str) -> Path | None:
        """A local file holding the object now, or ``None``: never a network call. The file
        may vanish later (a cache trims itself), so open it soon."""
        ...

    def fetch(self, key: str) -> Path:
        """A local file holding the object, downloaded into a cache first if only a remote
        store has it (may block: call it in a thread). ``ObjectMissing`` if it is nowhere."""
        ...

    def check(self) -> None: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _link(src: Path, dst: Path) -> None:
    """``os.link``, again after making the folder anew if a cache sweep has just removed it
    as empty (``kit.s3``); any other failure is raised as it came."""
    for _ in range(3):
        try:
            os.link(src, dst)
            return
        except FileNotFoundError:
            if not src.exists() or dst.parent.exists():
                raise
        with contextlib.suppress(FileExistsError):  # a file in its way: the link says so
            dst.parent.mkdir(parents=True, exist_ok=True)
    os.link(src, dst)


class FileStorage:
    def __init__(self, root: Path):
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or any(p in ("..", ".", "") for p in parts):
            raise ValueError(f"invalid storage key {key!r}")
        return self.root.joinpath(*parts)

    def put_file(self, key: str, src: Path) -> bool:
        dst = self._path(key)
        try:
            if dst.exists():  # content-addressed: same key, same bytes; a resend costs no fsync
                return False
            dst.parent.mkdir(parents=True, exist_ok=True)
            fsync_file(src)
            try:
                # A hard link publishes the file atomically and fails if the key exists, so two
                # receivers of the same object cannot overwrite each other.
                _link(src, dst)
            except FileExistsError:
                return False
            except OSError:
                # Different file systems: copy next to the target, then rename into place.
                tmp = dst.with_name(f".{dst.name}.{os.getpid()}.part")
                shutil.copyfile(src, tmp)
                fsync_file(tmp)
                if dst.exists():
                    tmp.unlink()
                    return False
                os.replace(tmp, dst)
            _fsync_dir(dst.parent)
            return True
        except OSError as exc:
            raise disk_error(exc, "store the file") from exc

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise ObjectMissing(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.exists() else None

    def fetch(self, key: str) -> Path:
        path = self.local_path(key)
        if path is None:
            raise ObjectMissing(key)
        return path

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        probe = self.root / f".health.{os.getpid()}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"storage is not writable: {exc.strerror or exc}") from exc


def open_storage(url: str, settings: Settings | None = None) -> Storage:
    """The storage a URL names: ``file:///path`` or ``s3://bucket/prefix`` (whose endpoint,
    credentials and local cache come from ``settings``)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileStorage(Path(parsed.path))
    if parsed.scheme == "s3":
        if settings is None:
            raise ValueError("an s3:// storage needs the settings (endpoint, credentials, cache)")
        from radrelay.kit.s3 import S3Storage  # boto3 loads only where S3 is used

        return S3Storage.from_settings(url, settings)
    raise ValueError(f"unsupported storage URL {url!r}: use file:///path or s3://bucket/prefix")
