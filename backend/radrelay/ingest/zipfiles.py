"""Opening zip files that hospitals upload (a CD export, a zipped folder), defensively.

Each member is judged on its own: an unsafe path (absolute, ``..``), an encrypted member, a
member that expands far more than any image does (a zip bomb) or past the size limits gets its
own failure, and the rest of the archive is still read. Sizes in the zip's directory are not
trusted: extraction counts the bytes it actually inflates and stops at the limit.
"""

from __future__ import annotations

import os
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from radrelay.ingest.schemas import FileOutcome, Outcome
from radrelay.kit.dicom import CANNOT_UNDERSTAND, OUT_OF_RESOURCES

_CHUNK = 1 << 20
# Files that archivers and operating systems add and nobody meant to send.
_NOISE = {".ds_store", "thumbs.db", "desktop.ini"}


DICOMDIR_SKIPPED = "skipped: the DICOMDIR index; the files it lists are read directly"


def is_dicomdir(name: str) -> bool:
    """A CD's index (found in a zip or picked up with a folder): the images it lists are read
    directly, the index itself is not stored."""
    return PurePosixPath(name.replace("\\", "/")).name.upper() == "DICOMDIR"


@dataclass(frozen=True)
class ZipLimits:
    max_members: int
    max_member_bytes: int
    max_total_bytes: int
    max_ratio: float


@dataclass
class Extracted:
    name: str
    path: Path


def _unsafe(name: str) -> str | None:
    if "\x00" in name:
        return "the member name contains a NUL byte"
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        return "the member has an absolute path"
    if ".." in PurePosixPath(normalized).parts:
        return "the member path climbs out of the archive (..)"
    return None


def extract(
    archive_name: str, path: Path, tmp_dir: Path, limits: ZipLimits
) -> tuple[list[Extracted], list[FileOutcome]]:
    """Extract the members worth inspecting into ``tmp_dir``. Returns (files, outcomes for
    members that were refused or skipped). An unreadable archive is one failed outcome."""
    files: list[Extracted] = []
    outcomes: list[FileOutcome] = []

    def refuse(
        name: str,
        message: str,
        outcome: Outcome = Outcome.failed,
        status: int = CANNOT_UNDERSTAND,
    ) -> None:
        # Failures carry a DICOM status like any other failed object; skips have none.
        status = status if outcome == Outcome.failed else 0
        outcomes.append(FileOutcome(name=name, outcome=outcome, message=message, status=status))

    try:
        archive = zipfile.ZipFile(path)
    # zipfile raises NotImplementedError for compression methods and features it lacks
    # (e.g. a multi-disk archive): a problem with this upload, not with our code.
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        refuse(archive_name, f"the zip file cannot be read: {exc}")
        return files, outcomes
    with archive:
        members = archive.infolist()
        if len(members) > limits.max_members:
            refuse(
                archive_name,
                f"the zip has {len(members)} members; the limit is {limits.max_members}",
            )
            return files, outcomes
        total = 0
        for info in members:
            name = f"{archive_name}/{info.filename}"
            base = PurePosixPath(info.filename.replace("\\", "/")).name
            if info.is_dir():
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                refuse(name, "skipped: a symbolic link, not a file", Outcome.skipped)
                continue
            if problem := _unsafe(info.filename):
                refuse(name, f"refused: {problem}")
                continue
            if base.lower() in _NOISE or info.filename.startswith("__MACOSX/"):
                refuse(name, "skipped: operating system metadata, not an image", Outcome.skipped)
                continue
            if is_dicomdir(info.filename):
                refuse(name, DICOMDIR_SKIPPED, Outcome.skipped)
                continue
            if info.flag_bits & 0x1:
                refuse(name, "refused: the member is encrypted")
                continue
            # The ratio first: a bomb is named as such, whatever size it claims to inflate to.
            if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
                refuse(
                    name,
                    f"refused: it would expand {info.file_size / info.compress_size:.0f} times "
                    f"(limit {limits.max_ratio:.0f}); this looks like a zip bomb",
                )
                continue
            if info.file_size > limits.max_member_bytes:
                refuse(
                    name,
                    f"refused: {info.file_size} bytes, over the limit of {limits.max_member_bytes}",
                    status=OUT_OF_RESOURCES,
                )
                continue
            if total + info.file_size > limits.max_total_bytes:
                refuse(
                    name,
                    f"refused: the archive inflates past the upload limit of "
                    f"{limits.max_total_bytes} bytes",
                    status=OUT_OF_RESOURCES,
                )
                continue
            budget = min(limits.max_member_bytes, limits.max_total_bytes - total)
            result = _extract_member(archive, info, tmp_dir, budget)
            if isinstance(result, str):
                refuse(name, result)
                continue
            total += result.stat().st_size
            files.append(Extracted(name, result))
    return files, outcomes


def _extract_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, tmp_dir: Path, budget: int
) -> Path | str:
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, suffix=".zm")
    out = Path(tmp)
    written = 0
    try:
        with os.fdopen(fd, "wb") as dst, archive.open(info) as src:
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                if written > budget or written > info.file_size:
                    out.unlink(missing_ok=True)
                    return "refused: the member inflates past its declared size"
                dst.write(chunk)
    # NotImplementedError: a compression method zipfile lacks (deflate64, ...); RuntimeError: a
    # member that needs a password. Both are this member's problem, reported as its outcome.
    except (
        zipfile.BadZipFile,
        zlib.error,
        OSError,
        EOFError,
        NotImplementedError,
        RuntimeError,
        ValueError,
    ) as exc:
        out.unlink(missing_ok=True)
        return f"the member cannot be extracted: {exc}"
    return out
