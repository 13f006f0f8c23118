"""Where DICOM files live, behind one small interface.

Keys are relative, slash-separated paths chosen by the caller. ``put_file`` is durable and
atomic: the object either exists whole under its key or not at all, so an index row that names a
key is only ever committed after the bytes are safe. Objects are immutable once written.

``FileStorage`` (``file://`` URL) is the embedded default. An S3-compatible backend plugs in here
later (issue 7) behind the same methods; nothing outside this module touches paths directly
except through ``local_path``, which a remote backend answers with ``None``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol
from urllib.parse import urlparse

from radrelay.errors import ServiceUnavailable


class StorageError(ServiceUnavailable):
    pass


class Storage(Protocol):
    def put_file(self, key: str, src: Path) -> bool:
        """Move ``src`` (a complete local file, fsynced by the caller or not) under ``key``.
        Returns False if the key already existed (immutable: the existing object is kept)."""
        ...

    def open(self, key: str) -> BinaryIO: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def local_path(self, key: str) -> Path | None: ...
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
                os.link(src, dst)
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
            raise StorageError(f"could not store the file: {exc.strerror or exc}") from exc

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        probe = self.root / f".health.{os.getpid()}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"storage is not writable: {exc.strerror or exc}") from exc


def open_storage(url: str) -> Storage:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileStorage(Path(parsed.path))
    raise ValueError(f"unsupported storage URL {url!r}: only file:// is available in this version")
