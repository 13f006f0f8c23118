"""Pixel data of stored Part 10 files for DICOMweb: frames, transcoded objects, rendered images.

Pure functions over paths on disk: no database, no HTTP. They run in a thread or process pool,
so they take and return picklable values (paths, ints, strings, ``RenderParams``, bytes), and a
request that cannot be served raises ``PixelError`` with the status to answer:

- 400: a rendering query parameter is malformed (PS3.18 8.3.5.1);
- 404: the frame number is out of range, or the object has no image;
- 406: the asked transfer syntax or media type cannot be produced (PS3.18 8.7).

Anything else (a stored file pydicom cannot parse, pixel data shorter than its header says) is
our fault, not the client's, and is left to surface as a server error.

Decoding is pydicom's (with the pylibjpeg, openjpeg, rle and pyjpegls plugins); encoding of
rendered images is Pillow's. The grayscale rendering pipeline follows PS3.4 N.2.1: Modality LUT,
VOI LUT, then MONOCHROME1 inversion in place of the Presentation LUT.
"""

from __future__ import annotations

import io
import math
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filereader import read_file_meta_info
from pydicom.filewriter import dcmwrite
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi,
    as_pixel_options,
    get_decoder,
    pack_bits,
)
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import (
    RE_VALID_UID,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)
from pydicom.valuerep import VR

from radrelay.dicomweb.media import parse_accept

__all__ = [
    "PixelError",
    "RenderParams",
    "frame_count",
    "native_frame",
    "parse_render_params",
    "render",
    "thumbnail",
    "transcode",
]

JPEG = "image/jpeg"
PNG = "image/png"
THUMBNAIL_VIEWPORT = (128, 128)

# Native encodings pydicom writes. Big endian is absent on purpose: retired in 2006, and
# producing it would mean byte-swapping every OW/OF/... value by hand for no client we know.
_NATIVE_TARGETS = frozenset(
    {ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian}
)
# Lossless only: compressing lossily on a client's request would change the pixel values
# radiologists read and make a new instance (PS3.3 C.7.6.1.1.5), which a retrieve by SOP
# Instance UID must not return.
_ENCODABLE = frozenset({RLELossless, JPEGLSLossless, JPEG2000Lossless})

_PIXEL_TAGS = {
    0x7FE00010: "PixelData",
    0x7FE00008: "FloatPixelData",
    0x7FE00009: "DoubleFloatPixelData",
}
_PIXEL_KEYWORDS = tuple(_PIXEL_TAGS.values())
# Word size of the VRs whose bytes follow the transfer syntax's byte order (PS3.5 7.3).
_SWAPPED_VRS = {VR.OW: 2, VR.OF: 4, VR.OL: 4, VR.OD: 8, VR.OV: 8}

# PS3.18 8.3.5.1 spells it "linear-exact", VOI LUT Function (0028,1056) "LINEAR_EXACT".
_WINDOW_FUNCTIONS = {
    "linear": "linear",
    "linear-exact": "linear_exact",
    "linear_exact": "linear_exact",
    "sigmoid": "sigmoid",
}
# A viewport is an output size we allocate: bound it so one request cannot ask for gigabytes.
_MAX_VIEWPORT = 4096
# zlib level 6 (Pillow's default) costs ~11 ms for a 512x512 frame, level 3 ~5 ms for ~15%
# more bytes: rendering time matters more here than the last bytes.
_PNG_COMPRESS_LEVEL = 3


class PixelError(Exception):
    """Raised for requests that cannot be served: message says what is wrong, for a 4xx.
    Attribute ``status``: 400 (bad parameter), 404 (frame number out of range / no pixel data),
    406 (cannot produce the asked transfer syntax/media type)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status

    def __reduce__(self) -> tuple[type[PixelError], tuple[str, int]]:
        # A process pool pickles the exception back to the caller: the default reduction
        # would rebuild it from ``args`` alone and lose the status.
        return (type(self), (self.message, self.status))


@dataclass(frozen=True)
class RenderParams:
    """How to render: ``media_type`` image/jpeg or image/png; ``quality`` 1..100 (JPEG only);
    ``window`` (center, width, function) with function "linear", "linear_exact" or "sigmoid";
    ``viewport`` (vw, vh) to fit the image inside, keeping its aspect ratio."""

    media_type: str = JPEG
    quality: int = 90
    window: tuple[float, float, str] | None = None
    viewport: tuple[int, int] | None = None


# --- Query parameters (PS3.18 8.3.5.1, 8.3.3.1) ------------------------------------------------


def parse_render_params(accept: str | None, query: Mapping[str, str]) -> RenderParams:
    """Rendering parameters from the Accept header and the query (PS3.18 8.3.5.1).

    - ``accept`` query parameter (PS3.18 8.3.3.1), when present, replaces the Accept header;
      ``image/jpeg`` (also for ``*/*``, ``image/*`` or no header) or ``image/png``;
    - ``quality=1..100``;
    - ``window=center,width[,function]``: function ``linear`` (default), ``linear-exact`` or
      ``sigmoid`` (also ``linear_exact``, any case);
    - ``viewport=vw,vh``; the 6-value form ``vw,vh,sx,sy,sw,sh`` is accepted with the source
      region left empty (``vw,vh,,,,``): cropping is not supported.

    Unknown parameters (``annotation``, ``charset``, ``iccprofile`` ...) are ignored, as PS3.18
    lets an origin server do. Raises ``PixelError`` 400 naming the bad parameter, 406 when the
    accepted media types include neither image/jpeg nor image/png.
    """
    accept_param = query.get("accept")
    media_type = _choose_media_type(accept_param if accept_param else accept)
    return RenderParams(
        media_type=media_type,
        quality=_parse_quality(query.get("quality")),
        window=_parse_window(query.get("window")),
        viewport=_parse_viewport(query.get("viewport")),
    )


def _choose_media_type(accept: str | None) -> str:
    """JPEG or PNG, whichever the Accept value prefers (highest q, then listed first); JPEG
    for a wildcard or no header."""
    for choice in parse_accept(accept):
        if choice.media_type in (JPEG, PNG):
            return choice.media_type
        if choice.media_type in ("*/*", "image/*"):
            return JPEG
    raise PixelError(
        f"Accept {accept!r} allows neither {JPEG} nor {PNG}, the rendered media types "
        "this server produces.",
        406,
    )


def _parse_quality(value: str | None) -> int:
    if value is None:
        return RenderParams.quality
    digits = value.strip()
    quality = int(digits) if digits.isascii() and digits.isdigit() else 0
    if not 1 <= quality <= 100:
        raise PixelError(f"quality={value!r}: give an integer from 1 to 100.")
    return quality


def _parse_window(value: str | None) -> tuple[float, float, str] | None:
    if value is None:
        return None
    parts = [part.strip() for part in value.split(",")]
    if len(parts) not in (2, 3):
        raise PixelError(f"window={value!r}: give center,width or center,width,function.")
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError:
        center = width = math.nan  # reported below, with "nan" and "inf"
    function = "linear"
    if len(parts) == 3:
        try:
            function = _WINDOW_FUNCTIONS[parts[2].lower()]
        except KeyError:
            raise PixelError(
                f"window={value!r}: the function must be linear, linear-exact or sigmoid."
            ) from None
    if problem := _window_problem(center, width, function):
        raise PixelError(f"window={value!r}: {problem}")
    return (center, width, function)


def _window_problem(center: float, width: float, function: str) -> str | None:
    if not (math.isfinite(center) and math.isfinite(width)):
        return "center and width must be numbers."
    if function not in _WINDOW_FUNCTIONS.values():
        return "the function must be linear, linear-exact or sigmoid."
    # PS3.3 C.11.2.1.2.1 and C.11.2.1.3: the width bounds of each function.
    if function == "linear" and width < 1:
        return "a linear window needs a width of at least 1."
    if width <= 0:
        return "the width must be greater than 0."
    return None


def _parse_viewport(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    parts = [part.strip() for part in value.split(",")]
    if len(parts) not in (2, 6):
        raise PixelError(f"viewport={value!r}: give vw,vh (or vw,vh,sx,sy,sw,sh).")
    if not all(part.isascii() and part.isdigit() for part in parts[:2]):
        raise PixelError(f"viewport={value!r}: vw and vh must be whole numbers of pixels.")
    vw, vh = int(parts[0]), int(parts[1])
    try:
        region = [float(part) for part in parts[2:] if part]
    except ValueError:
        raise PixelError(f"viewport={value!r}: sx,sy,sw,sh must be numbers.") from None
    if region:
        raise PixelError(
            f"viewport={value!r}: a source region (sx,sy,sw,sh) is not supported; "
            "send viewport=vw,vh to scale the whole image."
        )
    if problem := _viewport_problem(vw, vh):
        raise PixelError(f"viewport={value!r}: {problem}")
    return (vw, vh)


def _viewport_problem(vw: int, vh: int) -> str | None:
    if not (1 <= vw <= _MAX_VIEWPORT and 1 <= vh <= _MAX_VIEWPORT):
        return f"width and height must be from 1 to {_MAX_VIEWPORT} pixels."
    return None


def _check(params: RenderParams) -> None:
    """The checks of ``parse_render_params``, for parameters a caller built itself (WADO-URI
    has its own query parameters): a zero width or a huge viewport must not reach the
    arithmetic."""
    if params.media_type not in (JPEG, PNG):
        raise PixelError(f"Cannot render to {params.media_type!r}: only {JPEG} or {PNG}.", 406)
    if not 1 <= params.quality <= 100:
        raise PixelError(f"quality {params.quality}: give an integer from 1 to 100.")
    if params.window is not None and (problem := _window_problem(*params.window)):
        raise PixelError(f"window {params.window}: {problem}")
    if params.viewport is not None and (problem := _viewport_problem(*params.viewport)):
        raise PixelError(f"viewport {params.viewport}: {problem}")


# --- Reading the stored file --------------------------------------------------------------------


def frame_count(ds_or_path: Dataset | str | os.PathLike[str]) -> int:
    """Number of Frames (0028,0008), or 1 for a single-frame object (or one without it)."""
    ds = ds_or_path
    if not isinstance(ds, Dataset):
        ds = dcmread(ds, stop_before_pixels=True)
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


@dataclass
class _Stored:
    """The header of a stored object and where its pixel data is in the file."""

    ds: Dataset  # everything but the pixel data; the whole object for a deflated file
    transfer_syntax: UID
    f: BinaryIO
    pixel_keyword: str  # PixelData, FloatPixelData or DoubleFloatPixelData
    pixel_vr: str | None  # None for implicit VR
    value_offset: int  # where the pixel data value starts in f (-1 for a deflated file)
    value_length: int


def _open(f: BinaryIO) -> _Stored:
    """Read the header and locate the pixel data element. PixelError(404) when there is none."""
    ds = dcmread(f, stop_before_pixels=True)
    syntax = UID(ds.file_meta.get("TransferSyntaxUID", ExplicitVRLittleEndian))
    if syntax == DeflatedExplicitVRLittleEndian:
        # The data set is one zlib stream: no seeking to a frame; read all of it (rare: images
        # are seldom sent deflated).
        f.seek(0)
        ds = dcmread(f)
        keyword = next((k for k in _PIXEL_KEYWORDS if k in ds), None)
        if keyword is None or "Rows" not in ds or "Columns" not in ds:
            raise PixelError("The object has no image.", 404)
        return _Stored(ds, syntax, f, keyword, str(ds[keyword].VR), -1, 0)
    # dcmread stopped at the pixel data element's tag (PS3.5 7.1.2 element layouts).
    endian = "<" if syntax.is_little_endian else ">"
    header = f.read(8)
    tag = 0
    if len(header) == 8:
        group, element = struct.unpack(f"{endian}HH", header[:4])
        tag = group << 16 | element
    if tag not in _PIXEL_TAGS or "Rows" not in ds or "Columns" not in ds:
        raise PixelError("The object has no image.", 404)
    vr: str | None
    if syntax.is_implicit_VR:
        vr = None
        (length,) = struct.unpack(f"{endian}L", header[4:])
    else:  # VR, 2 reserved bytes, a 32-bit length: the form of every pixel data VR
        vr = header[4:6].decode("ascii")
        (length,) = struct.unpack(f"{endian}L", f.read(4))
    return _Stored(ds, syntax, f, _PIXEL_TAGS[tag], vr, f.tell(), length)


def _frame_index(ds: Dataset, frame: int) -> int:
    frames = frame_count(ds)
    if not 1 <= frame <= frames:
        raise PixelError(
            f"Frame {frame} is out of range: the object has {frames} frame"
            f"{'' if frames == 1 else 's'}, numbered from 1.",
            404,
        )
    return frame - 1


def _decode(stored: _Stored, index: int, *, raw: bool) -> tuple[npt.NDArray[Any], str]:
    """One frame decoded by pydicom, reading only that frame from the file, and the Photometric
    Interpretation of the result. ``raw=False`` converts YBR_FULL(_422) to RGB."""
    try:
        decoder = get_decoder(stored.transfer_syntax)
        if stored.value_offset < 0:
            arr, meta = decoder.as_array(stored.ds, index=index, raw=raw)
        else:
            # The header is parsed already: hand pydicom the file at the pixel data value
            # rather than parse it again through pixel_array().
            opts: dict[str, Any] = as_pixel_options(
                stored.ds,
                transfer_syntax_uid=stored.transfer_syntax,
                pixel_keyword=stored.pixel_keyword,
            )
            if stored.pixel_vr is not None:
                opts["pixel_vr"] = stored.pixel_vr
            stored.f.seek(stored.value_offset)
            arr, meta = decoder.as_array(stored.f, index=index, raw=raw, **opts)
    except (NotImplementedError, RuntimeError) as exc:
        # No decoder for the transfer syntax, or none of the installed plugins can decode it.
        raise PixelError(
            f"Cannot decode the stored {stored.transfer_syntax.name} pixel data: {exc}", 406
        ) from exc
    photometric = meta.get("photometric_interpretation") or stored.ds.get(
        "PhotometricInterpretation", ""
    )
    return arr, str(photometric).strip().upper()


# --- Frames (PS3.18 8.7: application/octet-stream) -------------------------------------------


def native_frame(path: Path, frame: int) -> bytes:
    """Frame ``frame`` (1-based) as uncompressed little endian pixel data.

    - Stored little endian and native: the frame's bytes exactly as stored (also for
      YBR_FULL_422, whose native form is subsampled);
    - BitsAllocated 1: the frame's bits, packed as in native encoding (PS3.5 8.1.1), from bit 0
      of the first byte even where a frame does not start on a byte boundary in the file;
    - stored big endian: decoded by pydicom and byte-swapped;
    - stored compressed: decoded by pydicom; colour comes out RGB interleaved (pydicom converts
      YBR_FULL/YBR_FULL_422 and the JPEG 2000 decoders undo YBR_RCT/YBR_ICT), so the
      Photometric Interpretation of the result is RGB whatever the stored one says.

    Raises PixelError 404 for a frame out of range or an object without pixel data, 406 when
    the stored transfer syntax cannot be decoded here.
    """
    with path.open("rb") as f:
        stored = _open(f)
        ds = stored.ds
        index = _frame_index(ds, frame)
        bits_allocated = int(ds.get("BitsAllocated") or 0)
        if (
            not stored.transfer_syntax.is_compressed
            and stored.transfer_syntax.is_little_endian
            and stored.transfer_syntax != DeflatedExplicitVRLittleEndian
            and bits_allocated % 8 == 0
        ):
            return _stored_frame(stored, index)
        arr, _ = _decode(stored, index, raw=not stored.transfer_syntax.is_compressed)
    if bits_allocated == 1:
        return pack_bits(arr, pad=False)
    if bits_allocated in (8, 16, 32, 64) and arr.dtype.itemsize * 8 != bits_allocated:
        # Keep the frame length the header promises (Rows x Columns x Samples x BitsAllocated/8).
        arr = arr.astype(f"{arr.dtype.kind}{bits_allocated // 8}")
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()


def _stored_frame(stored: _Stored, index: int) -> bytes:
    """The bytes of one frame of native little endian pixel data, read from the file."""
    frame_length = int(get_expected_length(stored.ds, "bytes")) // frame_count(stored.ds)
    end = (index + 1) * frame_length
    if end > stored.value_length:
        raise ValueError(
            f"The stored pixel data holds {stored.value_length} bytes, short of frame "
            f"{index + 1} (ending at byte {end})."
        )
    stored.f.seek(stored.value_offset + index * frame_length)
    return stored.f.read(frame_length)


# --- Transcoding (PS3.18 8.7: transfer-syntax parameter) ----------------------------------------


def transcode(path: Path, transfer_syntax: str) -> bytes:
    """The whole object as a Part 10 file in ``transfer_syntax``.

    The stored file is returned unchanged when it is already in that syntax. Otherwise the pixel
    data is decompressed first when stored compressed (colour converted to RGB, as pydicom does,
    and Photometric Interpretation updated to match), then encoded natively (Explicit or
    Implicit VR Little Endian, Deflated Explicit VR Little Endian) or losslessly compressed (RLE
    Lossless, JPEG-LS Lossless, JPEG 2000 Lossless). SOP Instance UID is kept (pydicom would
    make a new one): the client asked for this instance, and its pixel values are unchanged.

    Raises PixelError 406 naming the syntax when it cannot be produced, including lossy ones.
    """
    if not RE_VALID_UID.match(transfer_syntax):
        # Checked before UID() would warn about it: a client's typo is not worth a log line.
        raise PixelError(f"{transfer_syntax!r} is not a transfer syntax UID.", 406)
    target = UID(transfer_syntax)
    stored_syntax = UID(read_file_meta_info(path).get("TransferSyntaxUID", ""))
    if target == stored_syntax:
        return path.read_bytes()
    name = target.name
    if target not in _NATIVE_TARGETS and target not in _ENCODABLE:
        raise PixelError(
            f"Cannot produce the transfer syntax {name}: this server sends objects as stored "
            "or in Explicit VR Little Endian, Implicit VR Little Endian, Deflated Explicit VR "
            "Little Endian, RLE Lossless, JPEG-LS Lossless or JPEG 2000 Lossless.",
            406,
        )
    ds = dcmread(path)
    has_pixels = any(keyword in ds for keyword in _PIXEL_KEYWORDS)
    try:
        if has_pixels and stored_syntax.is_compressed:
            ds.decompress(generate_instance_uid=False)
        elif not stored_syntax.is_little_endian:
            _swap_to_little_endian(ds)
        if has_pixels and target in _ENCODABLE:
            ds.compress(target, generate_instance_uid=False)
        else:
            # Also for an object without pixel data in a compressed syntax: only pixel data is
            # compressed, the rest of the data set is Explicit VR Little Endian either way.
            ds.file_meta.TransferSyntaxUID = target
    except (NotImplementedError, RuntimeError, ValueError) as exc:
        raise PixelError(
            f"Cannot transcode from {stored_syntax.name} to {name}: {exc}", 406
        ) from exc
    out = io.BytesIO()
    dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue()


def _swap_to_little_endian(ds: Dataset) -> None:
    """Byte-swap the values pydicom keeps as bytes (OW, OF, ... and so the pixel data) of a big
    endian data set: pydicom re-encodes numbers and text itself, but not these (see
    ``pydicom.filewriter.dcmwrite``)."""
    for elem in ds.iterall():
        size = _SWAPPED_VRS.get(cast(VR, elem.VR))
        if size and isinstance(elem.value, bytes) and len(elem.value) % size == 0:
            elem.value = np.frombuffer(elem.value, f">u{size}").astype(f"<u{size}").tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian


# --- Rendering (PS3.18 8.3.5, PS3.4 N.2) --------------------------------------------------------


def render(path: Path, frame: int, params: RenderParams) -> bytes:
    """Frame ``frame`` (1-based) rendered to an 8-bit JPEG or PNG (PS3.18 8.3.5).

    Only that frame is read and decoded. Grayscale: Modality LUT (Rescale Slope/Intercept, from
    the frame's functional groups when present, or the Modality LUT Sequence), then VOI:
    ``params.window``, else the object's first Window Center/Width (and VOI LUT Function), else
    its first VOI LUT, else the frame's own min..max; MONOCHROME1 is inverted after VOI. Colour:
    RGB as is, YBR converted to RGB, PALETTE COLOR through its lookup table, more than 8 bits
    scaled to 8; ``params.window`` does not apply. Then scaled to fit ``params.viewport``
    keeping the aspect ratio (up as well as down), and encoded.

    Raises PixelError 400 for bad ``params`` (as ``parse_render_params`` would), 404 for a
    frame out of range or an object without an image, 406 for pixel data that cannot be decoded
    or rendered here, or a media type other than JPEG or PNG.
    """
    _check(params)
    with path.open("rb") as f:
        stored = _open(f)
        index = _frame_index(stored.ds, frame)
        arr, photometric = _decode(stored, index, raw=False)
    image = Image.fromarray(_to_8bit(arr, photometric, stored.ds, index, params.window))
    if params.viewport is not None:
        image = _fit(image, params.viewport)
    out = io.BytesIO()
    if params.media_type == PNG:
        image.save(out, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
    else:
        image.save(out, format="JPEG", quality=params.quality)
    return out.getvalue()


def thumbnail(path: Path, params: RenderParams) -> bytes:
    """The middle frame (frame (n + 1) // 2 of n) rendered, to fit 128x128 unless
    ``params.viewport`` says otherwise."""
    if params.viewport is None:
        params = RenderParams(params.media_type, params.quality, params.window, THUMBNAIL_VIEWPORT)
    return render(path, (frame_count(path) + 1) // 2, params)


def _to_8bit(
    arr: npt.NDArray[Any],
    photometric: str,
    ds: Dataset,
    index: int,
    window: tuple[float, float, str] | None,
) -> npt.NDArray[np.uint8]:
    """The decoded frame as 8-bit grey or RGB; ``photometric`` is that of ``arr``."""
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)[..., :3]  # no alpha
        # 16-bit entries should span 0..65535, but some writers put 8-bit values in them.
        if rgb.dtype.itemsize > 1 and int(rgb.max()) > 255:
            rgb = rgb >> 8
        return np.ascontiguousarray(rgb, dtype=np.uint8)
    if arr.ndim == 3:
        if arr.shape[-1] != 3:
            raise PixelError(f"Cannot render {arr.shape[-1]}-sample {photometric} pixels.", 406)
        # pydicom has converted YBR_* to RGB already (raw=False), as the decoders do for
        # YBR_RCT/YBR_ICT.
        return _colour_to_8bit(arr, int(ds.get("BitsStored") or 8))
    x = _modality(arr, ds, index)
    if window is not None:
        y = _window(x, *window)
    elif (own := _own_window(ds, index)) is not None:
        y = _window(x, *own)
    elif ds.get("VOILUTSequence"):
        y = _voi_lut(x, ds)
    else:
        y = _min_max(x)
    if photometric == "MONOCHROME1":
        np.subtract(255, y, out=y)
    return y


def _colour_to_8bit(arr: npt.NDArray[Any], bits_stored: int) -> npt.NDArray[np.uint8]:
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype.kind == "f":
        return np.clip(arr, 0, 255).astype(np.uint8)
    shift = bits_stored - 8
    scaled = arr >> shift if shift > 0 else arr << -shift
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _functional_item(ds: Dataset, index: int, keyword: str) -> Dataset | None:
    """The first item of sequence ``keyword`` in the frame's Per-Frame Functional Groups, else
    in the Shared ones (enhanced multi-frame objects, PS3.3 C.7.6.16)."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and index < len(per_frame):
        found = per_frame[index].get(keyword)
        if found:
            return cast(Dataset, found[0])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        found = shared[0].get(keyword)
        if found:
            return cast(Dataset, found[0])
    return None


def _modality(arr: npt.NDArray[Any], ds: Dataset, index: int) -> npt.NDArray[np.float32]:
    """Modality LUT stage (PS3.3 C.11.1), in float32: exact for stored values up to 2**24,
    and half the memory traffic of float64."""
    transformation = _functional_item(ds, index, "PixelValueTransformationSequence") or ds
    if "ModalityLUTSequence" in ds and "RescaleSlope" not in transformation:
        return cast(npt.NDArray[np.float32], apply_modality_lut(arr, ds).astype(np.float32))
    x = arr.astype(np.float32)
    slope = float(transformation.get("RescaleSlope") or 1.0)
    intercept = float(transformation.get("RescaleIntercept") or 0.0)
    if slope != 1.0:
        x *= np.float32(slope)
    if intercept != 0.0:
        x += np.float32(intercept)
    return x


def _own_window(ds: Dataset, index: int) -> tuple[float, float, str] | None:
    """The object's first window (for the frame, in an enhanced object), if it is usable."""
    source = _functional_item(ds, index, "FrameVOILUTSequence") or ds
    center, width = _first(source.get("WindowCenter")), _first(source.get("WindowWidth"))
    if center is None or width is None:
        return None
    function = str(source.get("VOILUTFunction") or "LINEAR").strip().lower()
    function = _WINDOW_FUNCTIONS.get(function, "linear")
    # A width the function cannot use is a fault in the object, not in the request: fall back.
    if width <= 0 or (function == "linear" and width < 1):
        return None
    return (center, width, function)


def _first(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if not isinstance(value, int | float | str):
        if len(value) == 0:
            return None
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _window(
    x: npt.NDArray[np.float32], center: float, width: float, function: str
) -> npt.NDArray[np.uint8]:
    """VOI windowing to 0..255 (PS3.3 C.11.2.1.2.1 LINEAR, C.11.2.1.3.2 LINEAR_EXACT,
    C.11.2.1.3.1 SIGMOID), in place on ``x``. Clipping the linear formulas gives exactly the
    standard's piecewise definitions."""
    if function == "sigmoid":
        with np.errstate(over="ignore"):  # exp overflows to inf far below the window: y = 0
            x -= np.float32(center)
            x *= np.float32(-4.0 / width)
            np.exp(x, out=x)
            x += np.float32(1.0)
            np.divide(np.float32(255.0), x, out=x)
    elif function == "linear_exact":
        x -= np.float32(center)
        x *= np.float32(255.0 / width)
        x += np.float32(127.5)
    elif width == 1:
        # The threshold case: the linear formula divides by width - 1.
        return np.where(x > center - 0.5, np.uint8(255), np.uint8(0))
    else:
        x -= np.float32(center - 0.5)
        x *= np.float32(255.0 / (width - 1))
        x += np.float32(127.5)
    return _to_uint8(x)


def _voi_lut(x: npt.NDArray[np.float32], ds: Dataset) -> npt.NDArray[np.uint8]:
    """The object's first VOI LUT Sequence item (PS3.3 C.11.2), output scaled from its bit
    depth."""
    # A LUT is indexed by integers: the Modality LUT output of integer data with a rescale.
    indices = np.rint(x).astype(np.int32)
    y = apply_voi(indices, ds).astype(np.float32)
    bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
    y *= np.float32(255.0 / (2**bits - 1))
    return _to_uint8(y)


def _min_max(x: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """Without any window: the frame's own range stretched to 0..255."""
    low, high = float(x.min()), float(x.max())
    if high <= low:
        return np.zeros(x.shape, dtype=np.uint8)
    x -= np.float32(low)
    x *= np.float32(255.0 / (high - low))
    return _to_uint8(x)


def _to_uint8(y: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    np.clip(y, 0, 255, out=y)
    y += np.float32(0.5)  # round half up on the truncating cast
    return y.astype(np.uint8)


def _fit(image: Image.Image, viewport: tuple[int, int]) -> Image.Image:
    """Scaled to fit inside ``viewport``, keeping the aspect ratio."""
    vw, vh = viewport
    scale = min(vw / image.width, vh / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if size == image.size:
        return image
    # Lanczos is the sharpest when shrinking (~2 ms for 512 to 128); enlarging with it costs
    # twice bicubic's time (~11 ms to 1024) for no visible gain.
    shrinking = scale < 1
    return image.resize(size, Image.Resampling.LANCZOS if shrinking else Image.Resampling.BICUBIC)
