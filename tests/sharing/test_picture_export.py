"""Picture exports decode one frame at a time and give the pictures whole-file decoding gave."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from unittest import mock

import numpy as np
import pydicom
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import JPEG2000Lossless, RLELossless

from portal import vault
from portal.models import Instance, Series
from portal.vault import blobs
from portal.vault.crypto import VaultIntegrityError
from sharing import pictures
from tests.sharing.helpers import ShareTestCase
from viewer import render as rnd


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def whole_file_pictures(series: Series, fmt: str) -> list[tuple[str, bytes]]:
    """Return the pictures as the export made them before it streamed: each file read whole."""
    folder = f"Images/Series {series.number or 0:03d}"
    ext = "jpg" if fmt == "jpeg" else "png"
    out, n = [], 0
    for instance in series.instances.select_related("blob").order_by("instance_number"):
        ds = pydicom.dcmread(io.BytesIO(vault.read_bytes(instance.blob)))
        try:
            frames = rnd.decode_frames(ds)
        except rnd.DecodeError:
            continue
        presets = rnd.window_presets(ds)
        for k, frame in enumerate(frames):
            info = rnd.RenderInfo.from_dataset(ds, k)
            window = presets[0] if presets else rnd.auto_window(frame, info)
            n += 1
            data = rnd.render_slice(frame, info, window["center"], window["width"], fmt)
            out.append((f"{folder}/{n:04d}.{ext}", data))
    return out


def multiframe_ct(frames: int, size: int = 128, *, modality: str = "CT") -> Dataset:
    """Return a signed 16-bit multi-frame dataset whose frames all differ."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    base = ds.pixel_array.astype(np.int16)
    if size != base.shape[0]:
        base = np.resize(base, (size, size))
    stack = np.stack([np.roll(base, 3 * k, axis=1) + np.int16(7 * k) for k in range(frames)])
    ds.Rows = ds.Columns = size
    ds.NumberOfFrames = frames
    ds.PixelData = stack.tobytes()
    ds.Modality = modality
    return ds


def compressed(ds: Dataset, syntax: str) -> Dataset:
    ds.compress(syntax, generate_instance_uid=False)
    return ds


def sample(name: str) -> Dataset:
    return pydicom.dcmread(get_testdata_file(name))


CASES = {
    "native CT, presets": lambda: multiframe_ct(12),
    "native, auto window per frame": lambda: multiframe_ct(12, modality="OT"),
    "native, 5 MB: frames straddle segments": lambda: multiframe_ct(40, size=256),
    "RLE": lambda: compressed(multiframe_ct(6, modality="OT"), RLELossless),
    "RLE, 1.6 MB: fragments straddle segments": lambda: compressed(
        multiframe_ct(80, modality="OT"), RLELossless
    ),
    "JPEG 2000 lossless": lambda: compressed(multiframe_ct(4), JPEG2000Lossless),
    "implicit VR": lambda: sample("MR_small_implicit.dcm"),
    "32-bit dose grid": lambda: sample("rtdose.dcm"),
    "32-bit dose grid, RLE": lambda: sample("rtdose_rle.dcm"),
    "explicit big endian": lambda: sample("rtdose_expb.dcm"),
    "RGB RLE": lambda: sample("SC_rgb_rle_2frame.dcm"),
    "16-bit RGB RLE": lambda: sample("SC_rgb_rle_16bit_2frame.dcm"),
    "palette": lambda: sample("examples_palette.dcm"),
    "YBR 4:2:2 native": lambda: sample("SC_ybr_full_422_uncompressed.dcm"),
    "JPEG baseline YBR, 30 frames": lambda: sample("examples_ybr_color.dcm"),
    "truncated (left out)": lambda: sample("MR_truncated.dcm"),
    "12-bit JPEG Extended (GDCM)": lambda: sample("JPGExtended.dcm"),
}


class PictureExportTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.sign_in()

    def add_series(self, *datasets: Dataset) -> Series:
        """Store the datasets as one new series of the shared study."""
        number = self.study.series.count() + 1
        uid = f"{self.study.study_uid}.{number}"
        series = Series.objects.create(study=self.study, series_uid=uid, number=number)
        for i, ds in enumerate(datasets, start=1):
            buf = io.BytesIO()
            ds.save_as(buf, enforce_file_format=True)
            buf.seek(0)
            Instance.objects.create(
                practice=self.practice,
                series=series,
                sop_instance_uid=f"{uid}.{i}",
                sop_class_uid=ds.SOPClassUID,
                transfer_syntax_uid=ds.file_meta.TransferSyntaxUID,
                instance_number=i,
                frames=int(ds.get("NumberOfFrames") or 1),
                blob=vault.store(buf),
            )
        return series

    def test_it_exports_every_frame_as_the_whole_file_decoding_did(self) -> None:
        series = self.add_series(multiframe_ct(24))
        r = self.client.get(f"/s/download/series/{series.code}/pictures.zip?format=png")
        zf = zipfile.ZipFile(io.BytesIO(body(r)))
        expected = whole_file_pictures(series, "png")
        self.assertEqual(len(expected), 24)
        self.assertEqual(zf.namelist(), [name for name, _ in expected])
        for name, data in expected:
            got = np.asarray(Image.open(io.BytesIO(zf.read(name))))
            self.assertTrue(np.array_equal(got, np.asarray(Image.open(io.BytesIO(data)))), name)

    def test_it_matches_the_whole_file_decoding_for_every_kind_of_file(self) -> None:
        """Names and bytes (so pixels after window/level) equal the whole-file rendering."""
        for label, make in CASES.items():
            series = self.add_series(make())
            for fmt in ("png", "jpeg"):
                with self.subTest(label, fmt=fmt):
                    expected = whole_file_pictures(series, fmt)
                    self.assertEqual(len(expected) == 0, "left out" in label)
                    self.assertEqual(list(pictures.render_series(series, fmt)), expected)

    def test_it_leaves_out_files_it_cannot_decode(self) -> None:
        series = self.add_series(sample("MR_truncated.dcm"), multiframe_ct(3))
        names = [name for name, _ in pictures.render_series(series, "jpeg")]
        self.assertEqual(
            names, [f"Images/Series {series.number:03d}/{n:04d}.jpg" for n in (1, 2, 3)]
        )

    def export_peak(self, frames: int) -> tuple[int, int]:
        """Export one file of 256x256 16-bit frames; return (its size, peak traced memory)."""
        series = self.add_series(multiframe_ct(frames, size=256))
        rnd.window_lut.cache_clear()  # one window for all frames: one LUT in either run
        tracemalloc.start()
        try:
            r = self.client.get(f"/s/download/series/{series.code}/pictures.zip")
            sent = sum(1 for chunk in r.streaming_content if chunk[:3] == b"\xff\xd8\xff")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertEqual(sent, frames)
        return series.instances.get().blob.plain_size, peak

    def test_memory_holds_one_frame_not_the_file(self) -> None:
        """A file four times larger costs no more memory; peak stays far below the file size."""
        small_size, small_peak = self.export_peak(64)  # 8 MB
        size, peak = self.export_peak(256)  # 32 MB
        self.assertGreater(size, 4 * small_size - 2**20)
        self.assertLess(peak, small_peak + 2**20)
        self.assertLess(peak, size // 5)  # whole-file decoding held the file and its frames

    def test_a_storage_error_aborts_the_export(self) -> None:
        """A vault failure, in the header or among the frames, is never skipped as a bad file."""
        series = self.add_series(multiframe_ct(80))  # 80 x 32 KB: frames past the first segment
        segment = series.instances.get().blob.segment_size
        for error, from_byte in [(VaultIntegrityError, 0), (ConnectionError, segment)]:
            real = vault.iter_range

            def broken(obj, start=0, stop=None, error=error, from_byte=from_byte, real=real):
                if start >= from_byte:
                    raise error("storage failed")
                yield from real(obj, start, stop)

            with self.subTest(error=error.__name__), mock.patch.object(blobs, "iter_range", broken):
                with self.assertRaises(error):
                    body(self.client.get(f"/s/download/series/{series.code}/pictures.zip"))
