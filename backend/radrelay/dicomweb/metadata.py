"""What WADO-RS needs to know about a stored object, computed once from its file.

``describe`` reads a stored Part 10 file and returns its data set as DICOM JSON (PS3.18 F.2)
and the position of each frame's pixel data in the file, so that metadata and frame requests
are answered from the index and a file read at a known offset, without parsing the object
again. It runs in a worker (pydicom's JSON conversion is CPU work) and does no I/O besides
reading the file.

Values too large to inline (pixel data always, other binary values above
``BULK_THRESHOLD``) get a BulkDataURI ``bulkdata/<n>``, relative to the instance's URL, where
``n`` is the position of the element's value in the data set stream. The position names the
element at any depth, including inside sequences, and ``bulk_value`` finds it again.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame, parse_basic_offsets, parse_fragments
from pydicom.tag import Tag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

# Base64 characters above which a binary value is left out of the JSON for a BulkDataURI.
BULK_THRESHOLD = 1024
BULK_PREFIX = "bulkdata/"
PIXEL_DATA = Tag(0x7FE0, 0x0010)
_PIXEL_KEY = f"{PIXEL_DATA:08X}"
# AvailableTransferSyntaxUID: how the object is stored, so a viewer knows which frames it can
# ask for without transcoding (PS3.18 allows extra attributes in metadata).
AVAILABLE_TRANSFER_SYNTAX = "00083002"
_ITEM = 0xFFFEE000


@dataclass(frozen=True)
class Described:
    document: str  # DICOM JSON of the data set, one object
    bits_allocated: int | None
    pixel_offset: int | None  # file offset of the Pixel Data value (native), None otherwise
    frame_length: int | None  # bytes per native frame
    frames: list[list[list[int]]] | None  # encapsulated: per frame, [offset, length] fragments


def _bulk_uri(elem: DataElement) -> str:
    return f"{BULK_PREFIX}{elem.file_tell}"


def describe(path: Path) -> Described:
    with path.open("rb") as fp:
        ds = pydicom.dcmread(fp, stop_before_pixels=True)
        ts = UID(ds.file_meta.TransferSyntaxUID)
        # dcmread stopped right before Pixel Data, if there is any.
        located = _pixel_data_at(fp, fp.tell(), ds, ts)
        document = ds.to_json_dict(
            bulk_data_threshold=BULK_THRESHOLD, bulk_data_element_handler=_bulk_uri
        )
        pixel_offset = frame_length = None
        frames = None
        if located is not None:
            vr, value_offset, length = located
            document[_PIXEL_KEY] = {"vr": vr, "BulkDataURI": f"{BULK_PREFIX}{value_offset}"}
            if length == 0xFFFFFFFF:
                frames = _encapsulated_frames(fp, value_offset, _frame_count(ds), ts)
            else:
                pixel_offset = value_offset
                frame_length = _native_frame_length(ds, length)
    if located is None and ts == DeflatedExplicitVRLittleEndian:
        # Positions in a deflated file are positions in the inflated stream: read it whole.
        pixel = pydicom.dcmread(path).get(PIXEL_DATA)
        if pixel is not None:
            document[_PIXEL_KEY] = {"vr": pixel.VR, "BulkDataURI": _bulk_uri(pixel)}
    document[AVAILABLE_TRANSFER_SYNTAX] = {"vr": "UI", "Value": [str(ts)]}
    return Described(
        document=json.dumps(document, ensure_ascii=False, separators=(",", ":")),
        bits_allocated=_int(ds, "BitsAllocated"),
        pixel_offset=pixel_offset,
        frame_length=frame_length,
        frames=frames,
    )


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def _frame_count(ds: Dataset) -> int:
    return max(_int(ds, "NumberOfFrames") or 1, 1)


def _pixel_data_at(fp: BinaryIO, here: int, ds: Dataset, ts: UID) -> tuple[str, int, int] | None:
    """(VR, value offset, value length) of Pixel Data when its element starts at ``here``;
    None when there is none, or when file positions are not data set positions (deflate)."""
    if ts == DeflatedExplicitVRLittleEndian:
        return None
    endian = "<" if ts.is_little_endian else ">"
    fp.seek(here)
    header = fp.read(8)
    if len(header) < 8:
        return None
    group, elem = struct.unpack(f"{endian}HH", header[:4])
    if (group << 16 | elem) != PIXEL_DATA:
        return None
    if ts.is_implicit_VR:
        (length,) = struct.unpack(f"{endian}L", header[4:8])
        bits = _int(ds, "BitsAllocated") or 16
        return ("OW" if bits > 8 else "OB"), here + 8, length
    vr = header[4:6].decode("ascii", "replace")
    (length,) = struct.unpack(f"{endian}L", fp.read(4))
    return vr, here + 12, length


def _native_frame_length(ds: Dataset, length: int) -> int | None:
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    bits = _int(ds, "BitsAllocated")
    samples = _int(ds, "SamplesPerPixel") or 1
    if not rows or not cols or not bits or bits % 8:
        return None  # 1-bit frames do not start on byte boundaries: decode instead
    size = rows * cols * samples * bits // 8
    if size * _frame_count(ds) > length:
        return None  # shorter than it claims: let the decoder say what is wrong
    return size


def _encapsulated_frames(
    fp: BinaryIO, value_offset: int, nr_frames: int, ts: UID
) -> list[list[list[int]]] | None:
    endian = "<" if ts.is_little_endian else ">"
    fp.seek(value_offset)
    try:
        offsets = parse_basic_offsets(fp, endianness=endian)
        first = fp.tell()
        _, items = parse_fragments(fp, endianness=endian)
    except (ValueError, struct.error):
        return None
    fragments: list[tuple[int, int, int]] = []  # (item offset from first, data offset, length)
    for item in items:
        fp.seek(item)
        group, elem, length = struct.unpack(f"{endian}HHL", fp.read(8))
        if (group << 16 | elem) == _ITEM:
            fragments.append((item - first, item + 8, length))
    if not fragments:
        return None
    if offsets and len(offsets) == nr_frames:
        bounds = [*offsets, 1 << 62]
        return [
            [[data, n] for rel, data, n in fragments if bounds[i] <= rel < bounds[i + 1]]
            for i in range(nr_frames)
        ]
    if len(fragments) == nr_frames:
        return [[[data, n]] for _, data, n in fragments]
    if nr_frames == 1:
        return [[[data, n] for _, data, n in fragments]]
    return None  # several fragments per frame and no offset table: decode to find frames


def bulk_value(path: Path, position: int) -> DataElement | None:
    """The element whose value starts at ``position`` in the data set stream, at any depth."""
    ds = pydicom.dcmread(path)
    for elem in _walk(ds):
        if elem.file_tell == position:
            return elem
    return None


def _walk(ds: Dataset) -> Any:
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _walk(item)


def stored_frame(path: Path, number: int) -> bytes:
    """Frame ``number`` (1-based) of encapsulated pixel data as stored, when ``describe`` could
    not tell the frames apart by position (several fragments per frame, no offset table)."""
    ds = pydicom.dcmread(path)
    return get_frame(ds.PixelData, number - 1, number_of_frames=_frame_count(ds))
