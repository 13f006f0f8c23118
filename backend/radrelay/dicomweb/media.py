"""Content negotiation for WADO-RS (PS3.18 8.7) and the multipart/related responses it sends.

A client says in Accept what it can take: ``multipart/related; type="application/dicom";
transfer-syntax=...`` for whole objects, ``type="application/octet-stream"`` or an image media
type (``image/jpeg``, ``image/jls``, ``image/jp2`` ...) for frames and bulk data. Without a
transfer-syntax parameter PS3.18 means Explicit VR Little Endian (uncompressed); ``*`` means
"as you store it", which is what a viewer wants: no server-side transcoding.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from email.message import Message

from pydicom.uid import (
    JPEG2000,
    JPEG2000MC,
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEG2000MCLossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from radrelay.errors import BadRequest, NotAcceptable

DICOM = "application/dicom"
OCTETS = "application/octet-stream"
ANY_SYNTAX = "*"

# PS3.18 Table 8.7.3-5: image media types of frames and their transfer syntaxes; the first of
# each is the default when the transfer-syntax parameter is absent.
IMAGE_TYPES: dict[str, tuple[UID, ...]] = {
    "image/jpeg": (JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1),
    "image/jls": (JPEGLSLossless, JPEGLSNearLossless),
    "image/jp2": (JPEG2000Lossless, JPEG2000),
    "image/jpx": (JPEG2000MCLossless, JPEG2000MC),
    "image/dicom-rle": (RLELossless,),
}
_TYPE_OF_SYNTAX = {ts: media for media, syntaxes in IMAGE_TYPES.items() for ts in syntaxes}


@dataclass(frozen=True)
class MediaRange:
    """One alternative of an Accept header. For ``multipart/related`` ranges, ``media_type``
    is the part type (its ``type`` parameter)."""

    media_type: str
    transfer_syntax: str | None
    q: float
    multipart: bool


def parse_accept(header: str | None) -> list[MediaRange]:
    """The alternatives, best first (a missing header accepts anything)."""
    if not header or not header.strip():
        return [MediaRange("*/*", None, 1.0, False)]
    ranges = []
    for order, item in enumerate(_split(header)):
        msg = Message()
        msg["content-type"] = item
        main = msg.get_content_type() if "/" in item.split(";")[0] else "*/*"
        params = {k.lower(): v for k, v in msg.get_params(failobj=[])[1:]}
        raw_q = params.get("q", "1")
        try:
            q = float(raw_q)
        except ValueError:
            q = -1.0
        if not 0 <= q <= 1:
            raise BadRequest(f"Accept: q={raw_q!r} is not a weight between 0 and 1.")
        if q == 0:
            continue
        syntax = params.get("transfer-syntax")
        if main == "multipart/related":
            part = params.get("type", "*/*").lower()
            ranges.append((q, -order, MediaRange(part, syntax, q, True)))
        else:
            ranges.append((q, -order, MediaRange(main, syntax, q, False)))
    ranges.sort(key=lambda r: (r[0], r[1]), reverse=True)
    return [r for *_, r in ranges]


def _split(header: str) -> list[str]:
    """Comma-separated alternatives; commas inside quoted parameter values do not split."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    items.append("".join(current).strip())
    return [i for i in items if i]


def _wildcard(media_type: str, family: str = "") -> bool:
    return media_type == "*/*" or (bool(family) and media_type == f"{family}/*")


def object_syntax(ranges: Iterable[MediaRange], stored: str) -> str:
    """The transfer syntax to send a whole object in: the stored one when the client takes it,
    else the first it asks for (which means transcoding). 406 when it takes no DICOM object."""
    wanted = []
    for r in ranges:
        if not (r.media_type == DICOM or _wildcard(r.media_type, "application")):
            continue
        syntax = r.transfer_syntax or (
            # A bare */* (a browser, curl) gets the object as stored rather than a transcoding
            # nobody asked for; an explicit application/dicom gets PS3.18's default.
            ANY_SYNTAX if r.media_type != DICOM and not r.multipart else ExplicitVRLittleEndian
        )
        if syntax in (ANY_SYNTAX, stored):
            return stored
        wanted.append(syntax)
    if wanted:
        return wanted[0]
    raise NotAcceptable(
        'Instances are sent as multipart/related; type="application/dicom" '
        "(add transfer-syntax=* to get them as stored)."
    )


@dataclass(frozen=True)
class FrameForm:
    """How to send pixel data: ``raw`` means the stored bytes (compressed or native), else
    decoded to native little endian. ``content_type`` is each part's Content-Type."""

    raw: bool
    content_type: str


def frame_form(ranges: Iterable[MediaRange], stored: str, *, big_endian: bool) -> FrameForm:
    """Frames and pixel bulk data: as stored when the client takes the stored syntax, decoded to
    uncompressed when it asks for that, else 406."""
    stored_uid = UID(stored)
    native = not stored_uid.is_compressed
    stored_type = OCTETS if native else _TYPE_OF_SYNTAX.get(stored_uid, OCTETS)
    for r in ranges:
        media = r.media_type
        syntax = r.transfer_syntax
        if media == OCTETS or _wildcard(media, "application"):
            if syntax in (None, ExplicitVRLittleEndian) or (
                native and syntax == ANY_SYNTAX and not big_endian
            ):
                # Uncompressed little endian: stored bytes if that is how they are stored.
                raw = native and not big_endian
                return FrameForm(raw, f"{OCTETS}; transfer-syntax={ExplicitVRLittleEndian}")
            if syntax in (ANY_SYNTAX, stored):
                if native:  # big endian: PS3.18 frames are little endian
                    return FrameForm(False, f"{OCTETS}; transfer-syntax={ExplicitVRLittleEndian}")
                return FrameForm(True, f"{OCTETS}; transfer-syntax={stored}")
            continue
        if media in IMAGE_TYPES or _wildcard(media, "image") or media == "*/*":
            if native:
                if media == "*/*":
                    return FrameForm(
                        not big_endian, f"{OCTETS}; transfer-syntax={ExplicitVRLittleEndian}"
                    )
                continue
            family = IMAGE_TYPES.get(media, ())
            in_family = media == stored_type or not family
            if in_family and syntax in (None, ANY_SYNTAX, stored):
                return FrameForm(True, f"{stored_type}; transfer-syntax={stored}")
    raise NotAcceptable(
        f"The pixel data is stored as {stored}; ask for it with "
        f'multipart/related; type="{stored_type}"; transfer-syntax=* (as stored) or '
        f'type="{OCTETS}" (uncompressed).'
    )


class Multipart:
    """A multipart/related body written part by part (PS3.18 8.6.1.2). Only writing: reading
    multipart bodies is python-multipart's job (``kit.multipart``)."""

    def __init__(self, part_type: str):
        self.boundary = secrets.token_hex(16)
        self.part_type = part_type

    @property
    def content_type(self) -> str:
        return f'multipart/related; type="{self.part_type}"; boundary={self.boundary}'

    def head(self, content_type: str, location: str = "") -> bytes:
        lines = [f"--{self.boundary}", f"Content-Type: {content_type}"]
        if location:
            lines.append(f"Content-Location: {location}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def tail(self) -> bytes:
        return f"\r\n--{self.boundary}--\r\n".encode()

    def between(self) -> bytes:
        return b"\r\n"

    async def join(
        self, parts: AsyncIterator[tuple[str, bytes | AsyncIterator[bytes]]]
    ) -> AsyncIterator[bytes]:
        """Stream ``(content type, body)`` parts; a body may itself be a stream of chunks."""
        first = True
        async for content_type, body in parts:
            if not first:
                yield self.between()
            first = False
            yield self.head(content_type)
            if isinstance(body, bytes):
                yield body
            else:
                async for chunk in body:
                    yield chunk
        if first:
            # PS3.18 has no empty multipart body: the caller answers 404 before getting here.
            return
        yield self.tail()
