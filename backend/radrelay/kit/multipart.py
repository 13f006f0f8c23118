"""Streaming multipart bodies to disk with python-multipart (the parser Starlette itself uses).

Works for ``multipart/form-data`` (browser uploads) and ``multipart/related`` (STOW-RS). Every
part's body goes to its own file in the receive area as it arrives, so memory stays flat whatever
the size of the request; the limits are enforced while reading, so an oversize request is refused
before it fills the disk. The caller owns the files (``ReceivedBody.cleanup``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import ClientDisconnect, Request

from radrelay.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from radrelay.kit.storage import disk_error


@dataclass
class Part:
    headers: dict[str, str]
    path: Path
    size: int = 0

    @property
    def content_type(self) -> str:
        return (
            parse_options_header(self.headers.get("content-type", ""))[0].decode("latin-1").lower()
        )

    def _disposition(self) -> dict[bytes, bytes]:
        return parse_options_header(self.headers.get("content-disposition", ""))[1]

    @property
    def field_name(self) -> str | None:
        value = self._disposition().get(b"name")
        return value.decode("utf-8", "replace") if value is not None else None

    @property
    def filename(self) -> str | None:
        value = self._disposition().get(b"filename")
        return value.decode("utf-8", "replace") if value is not None else None

    def text(self, limit: int = 65536) -> str:
        if self.size > limit:
            raise BadRequest(f"form field {self.field_name!r} is longer than {limit} bytes")
        return self.path.read_bytes().decode("utf-8", "replace")


@dataclass
class ReceivedBody:
    content_type: str
    params: dict[str, str]
    parts: list[Part] = field(default_factory=list)
    extra_files: list[Path] = field(default_factory=list)

    def cleanup(self) -> None:
        for path in [*(p.path for p in self.parts), *self.extra_files]:
            path.unlink(missing_ok=True)


def content_type_of(request: Request) -> tuple[str, dict[str, str]]:
    raw = request.headers.get("content-type", "")
    ctype, params = parse_options_header(raw)
    return ctype.decode("latin-1").lower(), {
        k.decode("latin-1").lower(): v.decode("latin-1") for k, v in params.items()
    }


async def receive_multipart(
    request: Request,
    tmp_dir: Path,
    *,
    allowed: tuple[str, ...],
    max_total: int,
    max_parts: int = 100_000,
    on_part: Callable[[Part], None] | None = None,
) -> ReceivedBody:
    """Receive the whole body. ``on_part`` is called as each part is complete, while the rest
    of the body is still arriving, so its processing can start early."""
    ctype, params = content_type_of(request)
    if ctype not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type must be {' or '.join(allowed)}, not {ctype or 'missing'}."
        )
    boundary = params.get("boundary")
    if not boundary:
        raise BadRequest("The multipart Content-Type has no boundary parameter.")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_total:
        raise PayloadTooLarge(f"The request is {declared} bytes; the limit is {max_total}.")

    body = ReceivedBody(ctype, params)
    state: dict[str, object] = {"field": b"", "value": b"", "file": None}
    headers: dict[str, str] = {}
    current: list[Part] = []

    def on_part_begin() -> None:
        headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] = state["field"] + data[start:end]  # type: ignore[operator]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] = state["value"] + data[start:end]  # type: ignore[operator]

    def on_header_end() -> None:
        name = state["field"].decode("latin-1").strip().lower()  # type: ignore[attr-defined]
        headers[name] = state["value"].decode("latin-1").strip()  # type: ignore[attr-defined]
        state["field"] = b""
        state["value"] = b""

    def on_headers_finished() -> None:
        if len(body.parts) >= max_parts:
            raise PayloadTooLarge(f"The request has more than {max_parts} parts.")
        fd, name = tempfile.mkstemp(dir=tmp_dir, suffix=".part")
        part = Part(dict(headers), Path(name))
        body.parts.append(part)
        current[:] = [part]
        state["file"] = os.fdopen(fd, "wb", buffering=1 << 20)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        fh: IO[bytes] = state["file"]  # type: ignore[assignment]
        fh.write(data[start:end])
        current[0].size += end - start

    def on_part_end() -> None:
        fh: IO[bytes] | None = state["file"]  # type: ignore[assignment]
        if fh is not None:
            fh.close()
            state["file"] = None
            if on_part is not None:
                on_part(current[0])

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
        },
    )
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_total:
                raise PayloadTooLarge(f"The request is larger than the limit of {max_total} bytes.")
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        _abort(body, state)
        raise BadRequest(f"The multipart body is malformed: {exc}") from exc
    except ClientDisconnect:
        _abort(body, state)
        raise
    except OSError as exc:
        # Writing to the receive area failed (a full disk): nothing of the request is kept.
        _abort(body, state)
        raise disk_error(exc, "receive a request body") from exc
    except BaseException:
        _abort(body, state)
        raise
    if state["file"] is not None:
        _abort(body, state)
        raise BadRequest("The multipart body ended inside a part (missing closing boundary).")
    # python-multipart's finalize() does not check that the body is complete: a body cut after
    # a boundary, or inside the next part's headers, would pass as a whole request with its last
    # parts silently missing.
    if parser.state != MultipartState.END:
        _abort(body, state)
        raise BadRequest("The multipart body ended before its closing boundary.")
    return body


def _abort(body: ReceivedBody, state: dict[str, object]) -> None:
    fh = state.get("file")
    if fh is not None:
        # Closing flushes what is buffered, which fails again on a full disk.
        with contextlib.suppress(OSError):
            fh.close()  # type: ignore[attr-defined]
    body.cleanup()
