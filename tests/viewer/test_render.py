"""Tests for viewer.render: decoding every common transfer syntax, windowing, encoding, MPR."""

from __future__ import annotations

import io
import threading
import warnings

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import convert_color_space, pixel_array

from viewer import render
from viewer.render import (
    BoundedCache,
    DecodeError,
    RenderInfo,
    apply_window,
    build_volume,
    decode_frames,
    encode_jpeg,
    encode_png,
    modality_lut,
    plane_spacing,
    reformat,
    render_slice,
    slice_position,
    synthetic_ct_slice,
    thumbnail,
    window_presets,
)

# Files pydicom ships in its wheel (no download): name -> what it exercises.
SAME_AS_PYDICOM = {
    "CT_small.dcm": "explicit VR little endian, signed CT",
    "MR_small_implicit.dcm": "implicit VR little endian",
    "MR_small_bigendian.dcm": "explicit VR big endian",
    "MR_small_RLE.dcm": "RLE lossless",
    "MR_small_jp2klossless.dcm": "JPEG 2000 lossless",
    "JPEG2000.dcm": "JPEG 2000 (lossy syntax), tall NM",
    "693_J2KI.dcm": "JPEG 2000 lossy CT 512x512",
    "MR_small_jpeg_ls_lossless.dcm": "JPEG-LS lossless (GDCM)",
    "JPEGLSNearLossless_16.dcm": "JPEG-LS near lossless",
    "SC_rgb_jpeg_gdcm.dcm": "JPEG lossless process 14 SV1 (GDCM), RGB",
    "SC_rgb_jpeg_dcmtk.dcm": "JPEG baseline YBR_FULL -> RGB",
    "SC_rgb_dcmtk_+eb+cy+np.dcm": "JPEG baseline YBR_FULL_422 -> RGB",
    "SC_rgb_jpeg.dcm": "JPEG baseline RGB",
    "GDCMJ2K_TextGBR.dcm": "JPEG 2000 lossless YBR_RCT colour",
    "SC_rgb_rle.dcm": "RLE RGB",
    "SC_rgb_rle_2frame.dcm": "RLE RGB multi-frame",
    "ExplVR_BigEnd.dcm": "big endian RGB",
    "examples_rgb_color.dcm": "uncompressed RGB",
    "examples_ybr_color.dcm": "JPEG baseline YBR_FULL_422, 30 frames",
    "image_dfl.dcm": "deflated explicit VR little endian",
    "liver_1frame.dcm": "1-bit segmentation",
    "rtdose.dcm": "32-bit multi-frame",
}


def _load(name: str) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(get_testdata_file(name))


def _reference_voi(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """Plain DICOM PS3.3 C.11.2.1.2.1 linear function, element by element in float64."""
    x = x.astype(np.float64)
    out = np.empty(x.shape)
    for i, v in np.ndenumerate(x):
        if v <= center - 0.5 - (width - 1) / 2:
            out[i] = 0
        elif v > center - 0.5 + (width - 1) / 2:
            out[i] = 255
        else:
            out[i] = ((v - (center - 0.5)) / (width - 1) + 0.5) * 255
    return out


class TestDecodeFrames:
    @pytest.mark.parametrize("name", sorted(SAME_AS_PYDICOM))
    def test_matches_pydicom(self, name: str) -> None:
        ds = _load(name)
        got = decode_frames(ds)
        expected = np.asarray(ds.pixel_array)
        samples = int(ds.get("SamplesPerPixel", 1))
        frames = int(ds.get("NumberOfFrames") or 1)
        shape = (frames, ds.Rows, ds.Columns) + ((3,) if samples == 3 else ())
        assert got.shape == shape
        if samples == 3:
            assert got.dtype == np.uint8
        assert got.dtype.isnative
        np.testing.assert_array_equal(got, expected.reshape(shape))

    def test_uncompressed_ybr_full_422_becomes_rgb(self) -> None:
        ds = _load("SC_ybr_full_422_uncompressed.dcm")
        raw = pixel_array(ds, raw=True)
        got = decode_frames(ds)
        np.testing.assert_array_equal(got[0], convert_color_space(raw, "YBR_FULL", "RGB"))

    def test_16_bit_colour_is_scaled_to_8_bit(self) -> None:
        ds = _load("SC_rgb_rle_16bit.dcm")
        got = decode_frames(ds)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got[0], (ds.pixel_array >> 8).astype(np.uint8))

    def test_palette_colour_becomes_rgb(self) -> None:
        ds = _load("examples_palette.dcm")
        got = decode_frames(ds)
        assert got.shape == (1, ds.Rows, ds.Columns, 3)
        assert got.dtype == np.uint8
        assert len(np.unique(got.reshape(-1, 3), axis=0)) > 10

    def test_missing_pixel_data(self) -> None:
        ds = _load("CT_small.dcm")
        del ds.PixelData
        with pytest.raises(DecodeError, match="no pixel data"):
            decode_frames(ds)

    def test_truncated_native_pixel_data(self) -> None:
        ds = _load("MR_small.dcm")
        ds.PixelData = ds.PixelData[:-100]
        with pytest.raises(DecodeError, match="shorter"):
            decode_frames(ds)
        with pytest.raises(DecodeError):
            decode_frames(_load("MR_truncated.dcm"))

    @pytest.mark.parametrize(
        "name", ["MR_small_jp2klossless.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm"]
    )
    def test_truncated_compressed_pixel_data(self, name: str) -> None:
        ds = _load(name)
        frame = next(generate_frames(ds.PixelData, number_of_frames=1))
        ds.PixelData = encapsulate([frame[: (len(frame) // 2) & ~1]])
        with pytest.raises(DecodeError) as caught:
            decode_frames(ds)
        assert str(ds.PatientName) not in str(caught.value)

    def test_unknown_transfer_syntax(self) -> None:
        ds = _load("CT_small.dcm")
        ds.file_meta.TransferSyntaxUID = "1.2.3.4.5.6"
        with pytest.raises(DecodeError, match="not supported"):
            decode_frames(ds)

    def test_12_bit_jpeg_extended_decodes_through_gdcm(self) -> None:
        # pydicom's own plugins refuse it (only the GPL libjpeg plugin would decode it).
        frames = decode_frames(_load("JPEG-lossy.dcm"))
        assert frames.shape == (1, 1024, 256) and frames.dtype == np.uint16
        assert 0 < int(frames.max()) < 4096

    def test_size_limit(self) -> None:
        with pytest.raises(DecodeError, match="larger"):
            decode_frames(_load("CT_small.dcm"), max_bytes=1000)


class TestModalityLut:
    def test_identity_is_returned_unchanged(self) -> None:
        ds = _load("MR_small.dcm")
        frames = decode_frames(ds)
        assert modality_lut(frames, ds) is frames

    def test_ct_intercept_gives_hounsfield(self) -> None:
        ds = _load("CT_small.dcm")
        frames = decode_frames(ds)
        hu = modality_lut(frames, ds)
        assert hu.dtype.kind == "i"
        np.testing.assert_array_equal(hu, frames.astype(np.int64) - 1024)

    def test_fractional_slope_gives_float(self) -> None:
        ds = Dataset()
        ds.RescaleSlope = "2.5"
        ds.RescaleIntercept = "-10"
        out = modality_lut(np.array([[0, 4]], dtype=np.uint16), ds)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, [[-10, 0]])

    def test_enhanced_ct_functional_groups(self) -> None:
        item = Dataset()
        item.RescaleSlope = "1"
        item.RescaleIntercept = "-1000"
        group = Dataset()
        group.PixelValueTransformationSequence = [item]
        ds = Dataset()
        ds.SharedFunctionalGroupsSequence = [group]
        assert RenderInfo.from_dataset(ds).intercept == -1000.0


class TestWindowPresets:
    def test_file_windows_with_names_then_ct_presets(self) -> None:
        ds = Dataset()
        ds.Modality = "CT"
        ds.WindowCenter = ["40", "300"]
        ds.WindowWidth = ["400", "1500"]
        ds.WindowCenterWidthExplanation = ["SOFT", "BONE"]
        presets = window_presets(ds)
        assert presets[0] == {"name": "SOFT", "center": 40.0, "width": 400.0}
        assert presets[1] == {"name": "BONE", "center": 300.0, "width": 1500.0}
        names = [p["name"] for p in presets]
        assert {"Bone", "Dental", "Lung"} <= set(names)
        assert "Soft tissue" not in names  # same values as the file's own SOFT

    def test_single_valued_window_without_ct_presets(self) -> None:
        presets = window_presets(_load("MR_small.dcm"))
        assert presets == [{"name": "Scanner's window", "center": 600.0, "width": 1600.0}]

    def test_ct_without_file_window(self) -> None:
        presets = window_presets(_load("CT_small.dcm"))
        assert [p["name"] for p in presets] == ["Soft tissue", "Bone", "Dental", "Lung"]


WINDOWS = [(40, 400), (-600, 1500), (1000, 4000), (0.5, 1), (10.5, 2), (300, 7)]


class TestApplyWindow:
    @pytest.mark.parametrize(("center", "width"), WINDOWS)
    def test_int16_lut_matches_reference(self, center: float, width: float) -> None:
        data = np.random.default_rng(1).integers(-2000, 5000, (40, 50)).astype(np.int16)
        data[0, :4] = [-32768, 32767, -1, 0]
        got = apply_window(data, center, width, intercept=-24.0)
        assert got.dtype == np.uint8
        expected = _reference_voi(data.astype(np.float64) - 24.0, center, width)
        assert np.abs(got.astype(np.float64) - expected).max() <= 1

    @pytest.mark.parametrize("dtype", [np.uint16, np.uint8, np.int32, np.float32])
    def test_other_dtypes_match_reference(self, dtype: type) -> None:
        info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
        hi = min(info.max, 5000) if info else 5000
        data = np.random.default_rng(2).integers(0, hi, (30, 30)).astype(dtype)
        for center, width in WINDOWS:
            got = apply_window(data, center, width, slope=2.0, intercept=-100)
            expected = _reference_voi(data.astype(np.float64) * 2.0 - 100, center, width)
            assert np.abs(got.astype(np.float64) - expected).max() <= 1

    def test_invert(self) -> None:
        data = synthetic_ct_slice(64)
        plain = apply_window(data, 40, 400, intercept=-1024)
        np.testing.assert_array_equal(
            apply_window(data, 40, 400, True, intercept=-1024), 255 - plain
        )

    def test_monochrome1_renders_inverted(self) -> None:
        ds = _load("MR_small.dcm")
        ds.PhotometricInterpretation = "MONOCHROME1"
        values = decode_frames(ds)[0]
        png = render_slice(values, ds, 600, 1600, fmt="png")
        shown = np.asarray(Image.open(io.BytesIO(png)))
        np.testing.assert_array_equal(shown, 255 - apply_window(values, 600, 1600))
        # The user's invert button flips MONOCHROME1 back to the stored sense.
        again = render_slice(values, ds, 600, 1600, fmt="png", invert=True)
        np.testing.assert_array_equal(
            np.asarray(Image.open(io.BytesIO(again))), apply_window(values, 600, 1600)
        )


class TestEncoding:
    def test_ct_slice_jpeg_is_small_grayscale_jpeg(self) -> None:
        img = apply_window(synthetic_ct_slice(), 40, 400, intercept=-1024)
        data = encode_jpeg(img)
        assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
        assert len(data) < 80 * 1024
        decoded = Image.open(io.BytesIO(data))
        assert decoded.mode == "L" and decoded.size == (512, 512)
        assert np.abs(np.asarray(decoded).astype(int) - img).mean() < 4

    def test_rgb_jpeg(self) -> None:
        rgb = decode_frames(_load("SC_rgb_rle.dcm"))[0]
        assert Image.open(io.BytesIO(encode_jpeg(rgb))).mode == "RGB"

    def test_png_is_lossless(self) -> None:
        img = np.random.default_rng(3).integers(0, 256, (33, 17)).astype(np.uint8)
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(encode_png(img)))), img)

    def test_thumbnail_keeps_aspect(self) -> None:
        img = np.zeros((256, 512), dtype=np.uint8)
        assert Image.open(io.BytesIO(thumbnail(img))).size == (128, 64)

    def test_render_slice_with_mapping_info_and_bad_format(self) -> None:
        values = synthetic_ct_slice(32)
        png = render_slice(values, {"intercept": -1024.0}, 40, 400, fmt="png")
        expected = apply_window(values, 40, 400, intercept=-1024)
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), expected)
        with pytest.raises(ValueError):
            render_slice(values, RenderInfo(), 40, 400, fmt="gif")

    def test_benchmark_reports_figures(self) -> None:
        figures = render.benchmark_render(n=5)
        assert figures["jpeg_kb"] < 80
        assert all(figures[k] > 0 for k in ("window_ms", "jpeg_ms", "png_ms"))


class TestMpr:
    def setup_method(self) -> None:
        z, y, x = np.mgrid[:4, :5, :6]
        self.volume = build_volume(list((z * 100 + y * 10 + x).astype(np.int16)))

    def test_shapes(self) -> None:
        assert self.volume.shape == (4, 5, 6)
        assert reformat(self.volume, "axial", 2).shape == (5, 6)
        assert reformat(self.volume, "coronal", 2).shape == (4, 6)
        assert reformat(self.volume, "sagittal", 1).shape == (4, 5)

    def test_superior_is_up(self) -> None:
        coronal = reformat(self.volume, "coronal", 2)
        np.testing.assert_array_equal(coronal[0], 300 + 20 + np.arange(6))  # top row = last z
        np.testing.assert_array_equal(coronal[-1], 20 + np.arange(6))
        sagittal = reformat(self.volume, "sagittal", 1)
        np.testing.assert_array_equal(sagittal[0], 300 + 10 * np.arange(5) + 1)
        descending = reformat(self.volume, "sagittal", 1, z_ascending=False)
        np.testing.assert_array_equal(descending[0], 10 * np.arange(5) + 1)

    def test_reformat_renders(self) -> None:
        cut = reformat(self.volume, "sagittal", 5)
        img = apply_window(cut, 200, 400)
        assert img.shape == (4, 5) and img[0, 0] > img[-1, 0]

    def test_bad_requests(self) -> None:
        with pytest.raises(IndexError):
            reformat(self.volume, "coronal", 5)
        with pytest.raises(ValueError):
            reformat(self.volume, "oblique", 0)
        with pytest.raises(ValueError):
            build_volume([np.zeros((2, 2)), np.zeros((2, 3))])

    def test_plane_spacing(self) -> None:
        assert plane_spacing("axial", (0.4, 0.5), 1.25) == (0.4, 0.5)
        assert plane_spacing("coronal", (0.4, 0.5), 1.25) == (1.25, 0.5)
        assert plane_spacing("sagittal", (0.4, 0.5), -1.25) == (1.25, 0.4)

    def test_slice_position_sorts_along_normal(self) -> None:
        ds = _load("CT_small.dcm")
        assert slice_position(ds) == pytest.approx(-75.699997)


class TestBoundedCache:
    def test_evicts_least_recently_used(self) -> None:
        cache = BoundedCache(max_bytes=300)
        for key in "abc":
            cache.put(key, np.zeros(100, dtype=np.uint8))
        assert cache.get("a") is not None  # a is now the most recent
        cache.put("d", np.zeros(100, dtype=np.uint8))
        assert "b" not in cache and {"a", "c", "d"} <= {k for k in "abcd" if k in cache}
        assert cache.nbytes == 300 and len(cache) == 3

    def test_oversized_is_not_stored_and_entries_are_read_only(self) -> None:
        cache = BoundedCache(max_bytes=100)
        assert cache.put("big", np.zeros(101, dtype=np.uint8)) is False
        assert "big" not in cache
        source = np.zeros(10, dtype=np.uint8)
        cache.put("small", source)
        with pytest.raises(ValueError):
            cache.get("small")[0] = 1
        source[0] = 1  # the caller's own array stays writable

    def test_get_or_build_and_replace(self) -> None:
        cache = BoundedCache(max_bytes=1000)
        calls: list[int] = []

        def build() -> np.ndarray:
            calls.append(1)
            return np.ones(10, dtype=np.uint8)

        cache.get_or_build("k", build)
        cache.get_or_build("k", build)
        assert len(calls) == 1
        cache.put("k", np.ones(50, dtype=np.uint8))
        assert cache.nbytes == 50
        cache.discard("k")
        assert cache.nbytes == 0 and len(cache) == 0

    def test_threads_keep_the_budget(self) -> None:
        cache = BoundedCache(max_bytes=64 * 10)

        def worker(offset: int) -> None:
            for i in range(200):
                cache.put((offset, i % 25), np.zeros(64, dtype=np.uint8))
                cache.get((offset, (i * 7) % 25))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert cache.nbytes <= 640 and cache.nbytes == 64 * len(cache)
