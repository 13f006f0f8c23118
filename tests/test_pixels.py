"""Pixel data for DICOMweb (``radrelay.dicomweb.pixels``): frames, transcoding, rendering.

Pure functions over files: these tests need no server. The inputs are pydicom's test files
(pydicom-data), the reference for decoded values is pydicom itself, and rendered images are
decoded back with Pillow.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi,
    apply_windowing,
    pack_bits,
    unpack_bits,
)
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)

from radrelay.dicomweb.pixels import (
    PixelError,
    RenderParams,
    frame_count,
    native_frame,
    parse_render_params,
    render,
    thumbnail,
    transcode,
)
from radrelay.errors import BadRequest

PNG = RenderParams(media_type="image/png")


def data(name: str) -> Path:
    found = get_testdata_file(name)
    assert found is not None, f"pydicom-data has no {name}"
    return Path(str(found))


def frames_of(path: Path) -> npt.NDArray[Any]:
    """All frames as pydicom decodes them, with a leading frame axis even for one frame."""
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    return arr if frame_count(ds) > 1 else arr[np.newaxis]


def little_endian(arr: npt.NDArray[Any]) -> bytes:
    return arr.astype(arr.dtype.newbyteorder("<")).tobytes()


def decoded(image: bytes) -> npt.NDArray[Any]:
    return np.asarray(Image.open(io.BytesIO(image)))


def png(path: Path, frame: int = 1, **params: Any) -> npt.NDArray[Any]:
    return decoded(render(path, frame, RenderParams(media_type="image/png", **params)))


def modified(tmp_path: Path, name: str, **attributes: Any) -> Path:
    """A copy of a test file with some attributes changed."""
    ds = pydicom.dcmread(data(name))
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    out = tmp_path / f"modified-{name}"
    ds.save_as(out)
    return out


def close(actual: npt.NDArray[Any], expected: npt.NDArray[Any], tolerance: int = 1) -> bool:
    return bool(np.abs(actual.astype(int) - expected.astype(int)).max() <= tolerance)


class TestPixelError:
    def test_keeps_its_status_through_pickling(self) -> None:
        # A process pool sends the exception back pickled.
        error = pickle.loads(pickle.dumps(PixelError("frame 9 is out of range", 404)))
        assert isinstance(error, PixelError)
        assert (error.status, error.message, str(error)) == (
            404,
            "frame 9 is out of range",
            "frame 9 is out of range",
        )

    def test_render_params_pickle(self) -> None:
        params = RenderParams("image/png", 50, (40.0, 400.0, "sigmoid"), (256, 128))
        assert pickle.loads(pickle.dumps(params)) == params


class TestParseRenderParams:
    def test_defaults(self) -> None:
        assert parse_render_params(None, {}) == RenderParams("image/jpeg", 90, None, None)

    @pytest.mark.parametrize(
        ("accept", "expected"),
        [
            ("", "image/jpeg"),
            ("*/*", "image/jpeg"),
            ("image/*", "image/jpeg"),
            ("image/jpeg", "image/jpeg"),
            ("image/png", "image/png"),
            ("IMAGE/PNG", "image/png"),
            ("image/png, image/jpeg", "image/png"),
            ("image/jpeg, image/png", "image/jpeg"),
            ("image/jpeg;q=0.4, image/png;q=0.5", "image/png"),
            ('image/png;q="0.9", */*;q=0.1', "image/png"),
            ("image/png, */*", "image/png"),
            ("image/png;q=0, */*", "image/jpeg"),
            ("text/html, image/*;q=0.2", "image/jpeg"),
            ("multipart/related; type=application/dicom, image/png;q=0.3", "image/png"),
        ],
    )
    def test_accept_chooses_the_media_type(self, accept: str, expected: str) -> None:
        assert parse_render_params(accept, {}).media_type == expected

    def test_accept_query_parameter_replaces_the_header(self) -> None:
        assert parse_render_params("text/html", {"accept": "image/png"}).media_type == "image/png"
        assert parse_render_params("image/png", {"accept": "image/jpeg"}).media_type == (
            "image/jpeg"
        )

    @pytest.mark.parametrize(
        "accept", ["text/html", "application/dicom", "image/png;q=0, image/jpeg;q=0", "image/gif"]
    )
    def test_accept_without_jpeg_or_png_is_not_acceptable(self, accept: str) -> None:
        with pytest.raises(PixelError) as raised:
            parse_render_params(accept, {})
        assert raised.value.status == 406
        assert "image/jpeg" in raised.value.message

    @pytest.mark.parametrize("accept", ["image/png;q=high", "image/png;q=1.5", "*/*;q=-1"])
    def test_bad_q_is_a_bad_request(self, accept: str) -> None:
        with pytest.raises(BadRequest) as raised:
            parse_render_params(accept, {})
        assert "q=" in raised.value.message

    @pytest.mark.parametrize(
        ("window", "expected"),
        [
            ("40,400", (40.0, 400.0, "linear")),
            ("-600.5, 1500", (-600.5, 1500.0, "linear")),
            ("40,400,linear", (40.0, 400.0, "linear")),
            ("40,400,linear-exact", (40.0, 400.0, "linear_exact")),
            ("40,400,LINEAR_EXACT", (40.0, 400.0, "linear_exact")),
            ("40,0.5,sigmoid", (40.0, 0.5, "sigmoid")),
            ("0,1", (0.0, 1.0, "linear")),
        ],
    )
    def test_window(self, window: str, expected: tuple[float, float, str]) -> None:
        assert parse_render_params(None, {"window": window}).window == expected

    @pytest.mark.parametrize(
        "window",
        [
            "40",
            "40,400,linear,1",
            "a,400",
            "40,",
            "40,nan",
            "inf,400",
            "40,400,gamma",
            "40,0.5",  # linear needs a width of at least 1
            "40,0,sigmoid",
            "40,-5,linear-exact",
        ],
    )
    def test_bad_window(self, window: str) -> None:
        with pytest.raises(PixelError) as raised:
            parse_render_params(None, {"window": window})
        assert raised.value.status == 400
        assert "window" in raised.value.message

    @pytest.mark.parametrize(
        ("viewport", "expected"),
        [("256,128", (256, 128)), (" 64 , 64 ", (64, 64)), ("512,512,,,,", (512, 512))],
    )
    def test_viewport(self, viewport: str, expected: tuple[int, int]) -> None:
        assert parse_render_params(None, {"viewport": viewport}).viewport == expected

    @pytest.mark.parametrize(
        "viewport",
        [
            "256",
            "256,abc",
            "256.5,128",
            "-1,128",
            "0,128",
            "5000,128",
            "256,128,0,0",
            "256,128,x,,,",
            "256,128,0,0,64,64",  # a source region: cropping is not supported
        ],
    )
    def test_bad_viewport(self, viewport: str) -> None:
        with pytest.raises(PixelError) as raised:
            parse_render_params(None, {"viewport": viewport})
        assert raised.value.status == 400
        assert "viewport" in raised.value.message

    @pytest.mark.parametrize("quality", ["1", "55", "100"])
    def test_quality(self, quality: str) -> None:
        assert parse_render_params(None, {"quality": quality}).quality == int(quality)

    @pytest.mark.parametrize("quality", ["0", "101", "-5", "high", "50.5", ""])
    def test_bad_quality(self, quality: str) -> None:
        with pytest.raises(PixelError) as raised:
            parse_render_params(None, {"quality": quality})
        assert raised.value.status == 400
        assert "quality" in raised.value.message

    def test_unknown_parameters_are_ignored(self) -> None:
        query = {"annotation": "patient", "charset": "utf-8", "iccprofile": "srgb"}
        assert parse_render_params(None, query) == RenderParams()


class TestNativeFrame:
    @pytest.mark.parametrize(
        "name",
        [
            "MR_small_RLE.dcm",
            "MR_small_jp2klossless.dcm",
            "MR_small_jpeg_ls_lossless.dcm",
            "JPEGLSNearLossless_16.dcm",
            "MR_small_bigendian.dcm",
            "ExplVR_BigEnd.dcm",  # 8-bit RGB, big endian
            "SC_rgb_rle.dcm",
            "JPGExtended.dcm",  # 12-bit JPEG
        ],
    )
    def test_decodes_compressed_and_big_endian_to_little_endian(self, name: str) -> None:
        path = data(name)
        assert native_frame(path, 1) == little_endian(frames_of(path)[0])

    @pytest.mark.parametrize(
        "name",
        [
            "emri_small_RLE.dcm",
            "emri_small_jpeg_ls_lossless.dcm",
            "emri_small_jpeg_2k_lossless.dcm",
            "emri_small_big_endian.dcm",
        ],
    )
    def test_frame_k_of_a_multi_frame(self, name: str) -> None:
        path = data(name)
        frames = frames_of(path)
        assert len(frames) == 10
        for k in (1, 4, 10):
            assert native_frame(path, k) == little_endian(frames[k - 1])
        assert native_frame(path, 4) != native_frame(path, 5)

    def test_compressed_colour_comes_out_rgb(self) -> None:
        # JPEG baseline stored YBR_FULL_422: the frame is what pydicom decodes, RGB.
        path = data("SC_rgb_jpeg_dcmtk.dcm")
        assert pydicom.dcmread(path).PhotometricInterpretation == "YBR_FULL"
        frame = np.frombuffer(native_frame(path, 1), np.uint8).reshape(100, 100, 3)
        assert close(frame, frames_of(data("SC_rgb.dcm"))[0], tolerance=8)

    def test_native_little_endian_is_the_stored_bytes(self) -> None:
        ds = pydicom.dcmread(data("emri_small.dcm"))
        length = 64 * 64 * 2
        assert native_frame(data("emri_small.dcm"), 3) == ds.PixelData[2 * length : 3 * length]
        assert (
            native_frame(data("MR_small.dcm"), 1) == pydicom.dcmread(data("MR_small.dcm")).PixelData
        )

    def test_native_ybr_full_422_stays_subsampled(self) -> None:
        # Native YBR_FULL_422 holds two values per pixel (PS3.3 C.7.6.3.1.2), as stored.
        path = data("SC_ybr_full_422_uncompressed.dcm")
        frame = native_frame(path, 1)
        assert len(frame) == 100 * 100 * 2
        assert frame == pydicom.dcmread(path).PixelData

    def test_one_bit_frames_are_packed(self) -> None:
        path = data("liver.dcm")  # 3 frames of 512x512, 1 bit
        frames = frames_of(path)
        for k in (1, 2, 3):
            frame = native_frame(path, k)
            assert len(frame) == 512 * 512 // 8
            assert frame == pack_bits(frames[k - 1], pad=False)
            unpacked = np.asarray(unpack_bits(frame)).reshape(512, 512)
            assert (unpacked == frames[k - 1]).all()

    @pytest.mark.parametrize(
        ("name", "frames"),
        [("MR_small.dcm", 1), ("emri_small.dcm", 10), ("emri_small_RLE.dcm", 10)],
    )
    def test_frame_out_of_range(self, name: str, frames: int) -> None:
        for frame in (0, frames + 1, -1):
            with pytest.raises(PixelError) as raised:
                native_frame(data(name), frame)
            assert raised.value.status == 404
            assert f"{frames} frame" in raised.value.message

    def test_object_without_pixel_data(self) -> None:
        with pytest.raises(PixelError) as raised:
            native_frame(data("rtplan.dcm"), 1)
        assert raised.value.status == 404
        assert "no image" in raised.value.message


class TestTranscode:
    @pytest.mark.parametrize(
        "name",
        [
            "MR_small_jp2klossless.dcm",
            "MR_small_RLE.dcm",
            "emri_small_jpeg_ls_lossless.dcm",
            "MR_small_bigendian.dcm",
        ],
    )
    def test_to_explicit_vr_little_endian(self, name: str) -> None:
        path = data(name)
        original = pydicom.dcmread(path)
        out = pydicom.dcmread(io.BytesIO(transcode(path, ExplicitVRLittleEndian)))
        assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert out.SOPInstanceUID == original.SOPInstanceUID
        assert out.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
        assert out.PatientName == original.PatientName
        assert np.array_equal(out.pixel_array, original.pixel_array)

    def test_big_endian_values_are_swapped(self) -> None:
        out = pydicom.dcmread(
            io.BytesIO(transcode(data("MR_small_bigendian.dcm"), ExplicitVRLittleEndian))
        )
        reference = pydicom.dcmread(data("MR_small.dcm"))
        assert out.PixelData == reference.PixelData

    def test_decompressed_colour_is_rgb(self) -> None:
        path = data("SC_rgb_jpeg_dcmtk.dcm")
        out = pydicom.dcmread(io.BytesIO(transcode(path, ImplicitVRLittleEndian)))
        assert out.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
        assert out.PhotometricInterpretation == "RGB"
        assert np.array_equal(out.pixel_array, pydicom.dcmread(path).pixel_array)

    @pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless])
    @pytest.mark.parametrize("name", ["MR_small.dcm", "emri_small.dcm", "SC_rgb.dcm"])
    def test_lossless_compression_round_trips(self, name: str, syntax: str) -> None:
        path = data(name)
        original = pydicom.dcmread(path)
        out = pydicom.dcmread(io.BytesIO(transcode(path, syntax)))
        assert out.file_meta.TransferSyntaxUID == syntax
        assert out.SOPInstanceUID == original.SOPInstanceUID
        assert np.array_equal(out.pixel_array, original.pixel_array)

    def test_recompresses_from_one_syntax_to_another(self) -> None:
        path = data("emri_small_RLE.dcm")
        out = pydicom.dcmread(io.BytesIO(transcode(path, JPEG2000Lossless)))
        assert out.file_meta.TransferSyntaxUID == JPEG2000Lossless
        assert np.array_equal(out.pixel_array, pydicom.dcmread(path).pixel_array)

    def test_big_endian_to_compressed(self) -> None:
        out = pydicom.dcmread(io.BytesIO(transcode(data("MR_small_bigendian.dcm"), RLELossless)))
        assert out.file_meta.TransferSyntaxUID == RLELossless
        assert np.array_equal(out.pixel_array, pydicom.dcmread(data("MR_small.dcm")).pixel_array)

    def test_deflated_both_ways(self, tmp_path: Path) -> None:
        deflated = tmp_path / "deflated.dcm"
        deflated.write_bytes(transcode(data("emri_small.dcm"), DeflatedExplicitVRLittleEndian))
        assert pydicom.dcmread(deflated).file_meta.TransferSyntaxUID == (
            DeflatedExplicitVRLittleEndian
        )
        out = pydicom.dcmread(io.BytesIO(transcode(deflated, ExplicitVRLittleEndian)))
        assert np.array_equal(out.pixel_array, frames_of(data("emri_small.dcm")))
        # Frames and renderings read from the deflated file too.
        assert native_frame(deflated, 7) == native_frame(data("emri_small.dcm"), 7)
        assert np.array_equal(png(deflated, 7), png(data("emri_small.dcm"), 7))

    def test_same_syntax_returns_the_stored_file(self) -> None:
        path = data("MR_small_RLE.dcm")
        assert transcode(path, RLELossless) == path.read_bytes()

    def test_object_without_pixel_data(self) -> None:
        path = data("rtplan.dcm")  # Implicit VR Little Endian
        out = pydicom.dcmread(io.BytesIO(transcode(path, ExplicitVRLittleEndian)))
        assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert out.SOPInstanceUID == pydicom.dcmread(path).SOPInstanceUID

    @pytest.mark.parametrize(
        ("syntax", "named"),
        [
            ("1.2.3.4.5", "1.2.3.4.5"),
            ("not a uid", "not a uid"),
            (JPEGBaseline8Bit, "JPEG Baseline"),  # lossy: not offered
        ],
    )
    def test_cannot_encode(self, syntax: str, named: str) -> None:
        with pytest.raises(PixelError) as raised:
            transcode(data("MR_small.dcm"), syntax)
        assert raised.value.status == 406
        assert named in raised.value.message

    def test_unencodable_pixels(self) -> None:
        # JPEG-LS cannot hold 32-bit samples.
        with pytest.raises(PixelError) as raised:
            transcode(data("rtdose.dcm"), JPEGLSLossless)
        assert raised.value.status == 406
        assert "JPEG-LS Lossless" in raised.value.message


def expected_window(path: Path, center: float, width: float, function: str) -> npt.NDArray[Any]:
    """pydicom's windowing of the whole pixel range, mapped to 0..255."""
    ds = pydicom.dcmread(path)
    ds.WindowCenter, ds.WindowWidth = center, width
    ds.VOILUTFunction = function.upper()
    out = apply_windowing(apply_modality_lut(ds.pixel_array, ds), ds)
    bits, signed = ds.BitsStored, ds.PixelRepresentation == 1
    low = -(2 ** (bits - 1)) if signed else 0
    high = low + 2**bits - 1
    return np.rint((out - low) / (high - low) * 255)


class TestRender:
    def test_jpeg(self) -> None:
        path = data("CT_small.dcm")
        image = render(path, 1, RenderParams())
        assert image[:2] == b"\xff\xd8"
        decoded_image = Image.open(io.BytesIO(image))
        assert (decoded_image.format, decoded_image.mode, decoded_image.size) == (
            "JPEG",
            "L",
            (128, 128),
        )

    def test_quality_changes_the_size(self) -> None:
        path = data("CT_small.dcm")
        low = render(path, 1, RenderParams(quality=10))
        high = render(path, 1, RenderParams(quality=95))
        assert len(low) < len(high)

    def test_png(self) -> None:
        image = render(data("MR_small.dcm"), 1, PNG)
        assert image[:8] == b"\x89PNG\r\n\x1a\n"
        assert decoded(image).shape == (64, 64)

    @pytest.mark.parametrize("function", ["linear", "linear_exact", "sigmoid"])
    @pytest.mark.parametrize("width", [800.0, 6.0])
    def test_window_follows_the_standard(self, function: str, width: float) -> None:
        # A narrow window tells the functions apart: LINEAR and LINEAR_EXACT differ by half a
        # value at the edges, dozens of output levels when the window is 6 wide.
        path = data("MR_small.dcm")
        rendered = png(path, window=(600.0, width, function))
        assert close(rendered, expected_window(path, 600.0, width, function))
        if width == 6.0:
            others = {"linear", "linear_exact", "sigmoid"} - {function}
            for other in others:
                assert not close(rendered, expected_window(path, 600.0, width, other))

    def test_window_far_above_all_values_is_black_far_below_is_white(self) -> None:
        path = data("MR_small.dcm")
        assert (png(path, window=(100_000.0, 10.0, "linear")) == 0).all()
        assert (png(path, window=(-100_000.0, 10.0, "linear")) == 255).all()
        assert (png(path, window=(100_000.0, 10.0, "sigmoid")) == 0).all()

    def test_width_one_is_a_threshold(self) -> None:
        path = data("MR_small.dcm")
        rendered = png(path, window=(500.0, 1.0, "linear"))
        # PS3.3 C.11.2.1.2.1: x <= c - 0.5 is the minimum, else the maximum.
        assert np.array_equal(rendered, np.where(frames_of(path)[0] > 499.5, 255, 0))

    def test_the_objects_own_window_by_default(self) -> None:
        path = data("MR_small.dcm")  # Window Center 600, Width 1600
        assert np.array_equal(png(path), png(path, window=(600.0, 1600.0, "linear")))
        assert not np.array_equal(png(path), png(path, window=(300.0, 600.0, "linear")))

    def test_voi_lut_function_of_the_object(self, tmp_path: Path) -> None:
        path = modified(tmp_path, "MR_small.dcm", VOILUTFunction="SIGMOID")
        assert np.array_equal(png(path), png(path, window=(600.0, 1600.0, "sigmoid")))

    def test_min_max_without_a_window(self) -> None:
        path = data("emri_small.dcm")  # no window, 10 frames
        for frame in (1, 7):
            pixels = frames_of(path)[frame - 1].astype(float)
            expected = np.rint((pixels - pixels.min()) / (pixels.max() - pixels.min()) * 255)
            assert close(png(path, frame), expected)

    def test_frames_differ(self) -> None:
        path = data("emri_small_RLE.dcm")
        assert not np.array_equal(png(path, 1), png(path, 10))
        assert np.array_equal(png(path, 10), png(data("emri_small.dcm"), 10))

    def test_monochrome1_is_the_inverse(self, tmp_path: Path) -> None:
        original = data("MR_small.dcm")
        inverted = modified(tmp_path, "MR_small.dcm", PhotometricInterpretation="MONOCHROME1")
        window = (600.0, 1600.0, "linear")
        assert np.array_equal(png(inverted, window=window), 255 - png(original, window=window))
        assert np.array_equal(png(inverted), 255 - png(original))

    def test_rescale_is_applied(self, tmp_path: Path) -> None:
        original = data("CT_small.dcm")  # slope 1, intercept -1024
        shifted = modified(tmp_path, "CT_small.dcm", RescaleIntercept=-824)
        # Every value is 200 HU higher: the same image shows through a window 200 HU higher.
        assert np.array_equal(
            png(shifted, window=(240.0, 400.0, "linear")),
            png(original, window=(40.0, 400.0, "linear")),
        )
        assert not np.array_equal(
            png(shifted, window=(40.0, 400.0, "linear")),
            png(original, window=(40.0, 400.0, "linear")),
        )
        doubled = modified(tmp_path, "CT_small.dcm", RescaleSlope=2, RescaleIntercept=0)
        stored = frames_of(original)[0].astype(float)
        expected = np.clip(np.rint((2 * stored - 999.5) / 999 * 255 + 127.5), 0, 255)
        assert close(png(doubled, window=(1000.0, 1000.0, "linear")), expected)

    def test_modality_lut_sequence(self) -> None:
        path = data("mlut_18.dcm")  # Modality LUT Sequence, no window
        ds = pydicom.dcmread(path)
        values = apply_modality_lut(ds.pixel_array, ds).astype(float)
        expected = np.rint((values - values.min()) / (values.max() - values.min()) * 255)
        assert close(png(path), expected)

    def test_voi_lut_sequence(self) -> None:
        path = data("vlut_04.dcm")  # VOI LUT Sequence, 16-bit entries
        ds = pydicom.dcmread(path)
        expected = np.rint(apply_voi(ds.pixel_array, ds) / 65535 * 255)
        assert close(png(path), expected)

    def test_rgb_as_is(self) -> None:
        path = data("SC_rgb.dcm")
        rendered = png(path)
        assert rendered.shape == (100, 100, 3)
        assert np.array_equal(rendered, frames_of(path)[0])
        assert np.array_equal(png(data("SC_rgb_rle.dcm")), rendered)

    @pytest.mark.parametrize(
        "name",
        [
            "SC_ybr_full_uncompressed.dcm",
            "SC_ybr_full_422_uncompressed.dcm",
            "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline, YBR_FULL
        ],
    )
    def test_ybr_becomes_rgb(self, name: str) -> None:
        rendered = png(data(name))
        assert rendered.shape == (100, 100, 3)
        # The same picture as SC_rgb.dcm, up to YCbCr rounding.
        assert close(rendered, png(data("SC_rgb.dcm")), tolerance=8)

    @pytest.mark.parametrize("name", ["SC_rgb_16bit.dcm", "SC_rgb_32bit.dcm"])
    def test_deep_colour_is_scaled_to_8_bits(self, name: str) -> None:
        assert np.array_equal(png(data(name)), png(data("SC_rgb.dcm")))

    def test_palette_colour(self) -> None:
        path = data("OBXXXX1A.dcm")
        ds = pydicom.dcmread(path)
        rendered = png(path)
        assert rendered.shape == (600, 800, 3)
        assert np.array_equal(rendered, apply_color_lut(ds.pixel_array, ds) >> 8)
        assert (rendered[..., 0] != rendered[..., 1]).any()  # colour, not grey

    @pytest.mark.parametrize(
        ("name", "viewport", "size"),
        [
            ("US1_UNCR.dcm", (320, 320), (320, 240)),  # 640x480, shrunk to the width
            ("US1_UNCR.dcm", (1000, 120), (160, 120)),  # shrunk to the height
            ("MR_small.dcm", (200, 100), (100, 100)),  # 64x64, enlarged
            ("MR_small.dcm", (64, 64), (64, 64)),
        ],
    )
    def test_viewport_fits_and_keeps_the_aspect_ratio(
        self, name: str, viewport: tuple[int, int], size: tuple[int, int]
    ) -> None:
        for media_type in ("image/png", "image/jpeg"):
            image = render(data(name), 1, RenderParams(media_type=media_type, viewport=viewport))
            assert Image.open(io.BytesIO(image)).size == size

    @pytest.mark.parametrize(
        ("name", "frames"), [("CT_small.dcm", 1), ("emri_small_jpeg_2k_lossless.dcm", 10)]
    )
    def test_frame_out_of_range(self, name: str, frames: int) -> None:
        for frame in (0, frames + 1):
            with pytest.raises(PixelError) as raised:
                render(data(name), frame, RenderParams())
            assert raised.value.status == 404

    def test_object_without_an_image(self) -> None:
        with pytest.raises(PixelError) as raised:
            render(data("rtplan.dcm"), 1, RenderParams())
        assert raised.value.status == 404
        assert "no image" in raised.value.message

    @pytest.mark.parametrize(
        ("params", "status", "named"),
        [
            (RenderParams(window=(40.0, 0.0, "linear")), 400, "window"),
            (RenderParams(window=(40.0, 0.0, "sigmoid")), 400, "window"),
            (RenderParams(window=(40.0, 400.0, "gamma")), 400, "window"),
            (RenderParams(viewport=(0, 100)), 400, "viewport"),
            (RenderParams(viewport=(100_000, 100_000)), 400, "viewport"),
            (RenderParams(quality=0), 400, "quality"),
            (RenderParams(media_type="image/gif"), 406, "image/gif"),
        ],
    )
    def test_checks_params_built_by_the_caller(
        self, params: RenderParams, status: int, named: str
    ) -> None:
        # WADO-URI builds RenderParams from its own query parameters.
        with pytest.raises(PixelError) as raised:
            render(data("CT_small.dcm"), 1, params)
        assert raised.value.status == status
        assert named in raised.value.message

    def test_decodes_only_the_asked_frame(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from pydicom.pixels.decoders.base import Decoder

        asked: list[int | None] = []
        as_array = Decoder.as_array

        def spy(self: Decoder, src: Any, **kwargs: Any) -> Any:
            asked.append(kwargs.get("index"))
            return as_array(self, src, **kwargs)

        monkeypatch.setattr(Decoder, "as_array", spy)
        render(data("emri_small_jpeg_2k_lossless.dcm"), 6, RenderParams())
        assert asked == [5]


class TestThumbnail:
    def test_middle_frame_fitted_to_128(self) -> None:
        path = data("emri_small.dcm")  # 10 frames of 64x64
        image = thumbnail(path, PNG)
        assert np.array_equal(
            decoded(image), decoded(render(path, 5, RenderParams("image/png", viewport=(128, 128))))
        )
        assert Image.open(io.BytesIO(image)).size == (128, 128)

    def test_single_frame(self) -> None:
        image = thumbnail(data("CT_small.dcm"), RenderParams())
        assert image[:2] == b"\xff\xd8"
        assert Image.open(io.BytesIO(image)).size == (128, 128)

    def test_viewport_given(self) -> None:
        image = thumbnail(data("US1_UNCR.dcm"), RenderParams(viewport=(64, 64)))
        assert Image.open(io.BytesIO(image)).size == (64, 48)

    def test_object_without_an_image(self) -> None:
        with pytest.raises(PixelError) as raised:
            thumbnail(data("rtplan.dcm"), RenderParams())
        assert raised.value.status == 404


class TestFrameCount:
    def test_from_path_and_data_set(self) -> None:
        assert frame_count(data("emri_small.dcm")) == 10
        assert frame_count(str(data("CT_small.dcm"))) == 1
        ds = Dataset()
        assert frame_count(ds) == 1
        ds.NumberOfFrames = 3
        assert frame_count(ds) == 3
