"""WADO-RS frames of compressed multi-frame originals: each frame's own fragments, exactly.

A frame may span several fragments; the Basic Offset Table (or one fragment per frame) says
which. The answer must be the frame's bytes as stored, whichever way the file was written.
"""

from __future__ import annotations

import io
import struct
import tempfile
import tracemalloc
from email import message_from_bytes
from pathlib import Path
from unittest import mock

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import JPEGBaseline8Bit, SecondaryCaptureImageStorage, generate_uid

from portal import vault
from portal.ingest import ingest_path
from sharing.dicomweb import wado
from sharing.dicomweb.tokens import create_token
from tests.sharing.helpers import ShareTestCase


def jpeg_frames(count: int, size: int = 32) -> list[bytes]:
    frames = []
    for k in range(count):
        pixels = (np.indices((size, size)).sum(axis=0) * (k + 1) * 3 % 256).astype(np.uint8)
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, format="JPEG", quality=90)
        frames.append(out.getvalue())
    return frames


def multiframe(
    frames: list[bytes], *, per_frame: int, table: bool, study_uid: str, pixel_data=None
) -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Example^Pat", "P-1001", "19800517"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "OT", 9, 1
    ds.Rows = ds.Columns = 32
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.NumberOfFrames = len(frames)
    ds.PixelData = pixel_data or encapsulate(frames, fragments_per_frame=per_frame, has_bot=table)
    ds["PixelData"].VR = "OB"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def stored_frames(data: bytes) -> list[bytes]:
    """Each frame as pydicom reads it from the file (fragments joined, padding kept)."""
    ds = pydicom.dcmread(io.BytesIO(data))
    return list(generate_frames(ds.PixelData, number_of_frames=ds.NumberOfFrames))


def parts(body: bytes, content_type: str) -> list[bytes]:
    message = message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    return [part.get_payload(decode=True) for part in message.get_payload()]


class CompressedFramesTestCase(ShareTestCase):
    def frames_of(self, data: bytes, numbers: str) -> list[bytes]:
        folder = Path(tempfile.mkdtemp(prefix="frames-"))
        (folder / "mf.dcm").write_bytes(data)
        report = ingest_path(folder, practice=self.practice, patient=self.pat)
        self.assertFalse(report.rejected, report.lines())
        self.instance = report.studies[0].series.get(number=9).instances.get()
        return self.frames_of_last(data, numbers)

    def frames_of_last(self, data: bytes, numbers: str) -> list[bytes]:
        """Ask again for frames of the instance frames_of stored."""
        instance = self.instance
        _, raw = create_token(self.share)
        path = (
            f"/dicomweb/studies/{self.study.study_uid}/series/{instance.series.series_uid}"
            f"/instances/{instance.sop_instance_uid}/frames/{numbers}"
        )
        r = self.client.get(path, HTTP_AUTHORIZATION=f"Bearer {raw}")
        self.assertEqual(r.status_code, 200, r.content if hasattr(r, "content") else "")
        body = b"".join(r.streaming_content)
        self.assertEqual(len(body), int(r["Content-Length"]))
        self.assertIn('type="image/jpeg"', r["Content-Type"])
        return parts(body, r["Content-Type"])

    def test_frames_that_span_fragments_are_found_by_the_offset_table(self) -> None:
        frames = jpeg_frames(4)
        data = multiframe(frames, per_frame=3, table=True, study_uid=self.study.study_uid)
        stored = stored_frames(data)
        self.assertEqual(stored[2][: len(frames[2])], frames[2])
        self.assertEqual(self.frames_of(data, "3,1"), [stored[2], stored[0]])

    def test_one_fragment_per_frame_needs_no_table(self) -> None:
        frames = jpeg_frames(5)
        data = multiframe(frames, per_frame=1, table=False, study_uid=self.study.study_uid)
        stored = stored_frames(data)
        self.assertEqual(self.frames_of(data, "5,2"), [stored[4], stored[1]])

    def test_without_a_table_the_codestreams_tell_the_frames_apart(self) -> None:
        frames = jpeg_frames(3)
        data = multiframe(frames, per_frame=2, table=False, study_uid=self.study.study_uid)
        self.assertEqual(self.frames_of(data, "2"), [stored_frames(data)[1]])

    def test_a_single_frame_in_several_fragments_is_whole(self) -> None:
        frames = jpeg_frames(1)
        data = multiframe(frames, per_frame=4, table=True, study_uid=self.study.study_uid)
        self.assertEqual(self.frames_of(data, "1"), stored_frames(data))

    def test_an_offset_table_that_names_no_item_is_not_trusted(self) -> None:
        # Some writers put offsets a few bytes off; the codestreams then tell the frames.
        frames = jpeg_frames(3)
        pixels = bytearray(encapsulate(frames, fragments_per_frame=2, has_bot=True))
        offsets = struct.unpack_from("<3I", pixels, 8)
        struct.pack_into("<3I", pixels, 8, offsets[0], offsets[1] + 8, offsets[2] + 8)
        uid = self.study.study_uid
        data = multiframe(frames, per_frame=2, table=True, study_uid=uid, pixel_data=bytes(pixels))
        # The same fragments, with the table a correct writer makes.
        right = stored_frames(multiframe(frames, per_frame=2, table=True, study_uid=uid))
        got = self.frames_of(data, "2,3")
        self.assertTrue(got == right[1:], "frames 2 and 3 are not the stored ones")

    def test_a_frame_among_endless_empty_items_is_still_whole(self) -> None:
        frames = jpeg_frames(1)
        empty = b"\xfe\xff\x00\xe0\x00\x00\x00\x00" * 5000
        pixels = encapsulate(frames, fragments_per_frame=1, has_bot=False)
        pixels += empty  # the writer adds the sequence delimiter after them
        data = multiframe(
            frames, per_frame=1, table=False, study_uid=self.study.study_uid, pixel_data=pixels
        )
        self.assertEqual(self.frames_of(data, "1"), stored_frames(data))
        not_indexed = wado._fragment_index[self.instance.blob.code] is None
        self.assertTrue(not_indexed, "5,000 empty items were indexed")

    def test_a_warm_frame_of_a_large_multiframe_reads_that_frame_only(self) -> None:
        rng = np.random.default_rng(7)
        frames = []
        for _ in range(40):
            out = io.BytesIO()
            noise = rng.integers(0, 256, (256, 256), dtype=np.uint8)
            Image.fromarray(noise).save(out, format="JPEG", quality=95)
            frames.append(out.getvalue())
        data = multiframe(frames, per_frame=1, table=True, study_uid=self.study.study_uid)
        self.assertGreater(len(data), wado.WHOLE_FILE_BYTES)  # read in ranges, not whole
        self.frames_of(data, "1")  # the first request finds where the frames lie
        with mock.patch.object(vault, "read_bytes", wraps=vault.read_bytes) as reads:
            got = self.frames_of_last(data, "20")
        self.assertEqual(got, [stored_frames(data)[19]])
        read = sum(call.args[2] - call.args[1] for call in reads.call_args_list)
        self.assertLess(read, 2 * len(frames[19]))


def native_multiframe(count: int, size: int, study_uid: str) -> bytes:
    """Uncompressed 16-bit frames, frame k a ramp scaled by k + 1 (each frame differs)."""
    ds = pydicom.dcmread(io.BytesIO(multiframe(jpeg_frames(1), per_frame=1, table=False,
                                               study_uid=study_uid)))  # fmt: skip
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.Rows = ds.Columns = size
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.NumberOfFrames = count
    ramp = np.indices((size, size)).sum(axis=0).astype(np.uint16)
    ds.PixelData = b"".join((ramp * (k + 1) % 4096).astype("<u2").tobytes() for k in range(count))
    ds["PixelData"].VR = "OW"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


class RenderedFrameTestCase(ShareTestCase):
    """/rendered of one frame decodes that frame only: a large cine costs one frame of memory,
    and the picture is the one decoding the whole file gives for that frame."""

    def store(self, data: bytes):  # noqa: ANN201
        folder = Path(tempfile.mkdtemp(prefix="rendered-"))
        (folder / "mf.dcm").write_bytes(data)
        report = ingest_path(folder, practice=self.practice, patient=self.pat)
        self.assertFalse(report.rejected, report.lines())
        return report.studies[0].series.get(number=9).instances.get()

    def rendered(self, instance, frame: int) -> bytes:  # noqa: ANN001
        _, raw = create_token(self.share)
        path = (
            f"/dicomweb/studies/{self.study.study_uid}/series/{instance.series.series_uid}"
            f"/instances/{instance.sop_instance_uid}/frames/{frame}/rendered"
        )
        tracemalloc.start()
        try:
            r = self.client.get(path, HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ACCEPT="image/png")
            self.peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertEqual(r.status_code, 200)
        return r.content

    def assert_same_as_whole_decode(self, instance, frame: int) -> None:  # noqa: ANN001
        got = self.rendered(instance, frame)
        with mock.patch.object(wado, "_one_frame", return_value=None):
            whole = self.rendered(instance, frame)
        self.assertEqual(np.asarray(Image.open(io.BytesIO(got))).tolist(),
                         np.asarray(Image.open(io.BytesIO(whole))).tolist())  # fmt: skip

    def test_a_frame_of_a_large_uncompressed_cine_is_rendered_from_that_frame_alone(self) -> None:
        instance = self.store(native_multiframe(160, 256, self.study.study_uid))  # 21 MB
        self.rendered(instance, 3)
        self.assertLess(self.peak, 6 * 2**20, f"peak {self.peak / 2**20:.0f} MiB")
        self.assert_same_as_whole_decode(instance, 3)

    def test_a_compressed_frame_is_the_one_asked_for(self) -> None:
        data = multiframe(jpeg_frames(4), per_frame=2, table=True, study_uid=self.study.study_uid)
        self.assert_same_as_whole_decode(self.store(data), 3)

    def test_a_file_with_an_extended_offset_table_renders_each_frame(self) -> None:
        from pydicom.encaps import encapsulate_extended

        pixels, table, lengths = encapsulate_extended(jpeg_frames(3))
        data = multiframe(jpeg_frames(3), per_frame=1, table=False,
                          study_uid=self.study.study_uid, pixel_data=pixels)  # fmt: skip
        ds = pydicom.dcmread(io.BytesIO(data))
        ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = table, lengths
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        self.assert_same_as_whole_decode(self.store(out.getvalue()), 2)


class HeavyRequestsTestCase(ShareTestCase):
    """A token's software may run only a few renders or metadata reads at once, as a browser
    session may in the viewer: the rest are asked to come back a moment later."""

    def test_a_token_running_its_share_of_heavy_requests_is_asked_to_wait(self) -> None:
        from contextlib import ExitStack

        from sharing.dicomweb import views

        token, raw = create_token(self.share)
        instance = self.study.series.first().instances.first()
        base = (
            f"/dicomweb/studies/{self.study.study_uid}/series/{instance.series.series_uid}"
            f"/instances/{instance.sop_instance_uid}"
        )
        auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
        with ExitStack() as held:
            for _ in range(views.HEAVY.per_client):
                self.assertTrue(held.enter_context(views.HEAVY.take(f"token:{token.pk}")))
            for path in (f"{base}/frames/1/rendered", f"{base}/metadata"):
                r = self.client.get(path, **auth)
                self.assertEqual(r.status_code, 429, path)
                self.assertEqual(r["Retry-After"], "1")
        self.assertEqual(self.client.get(f"{base}/frames/1/rendered", **auth).status_code, 200)
        self.assertEqual(self.client.get(f"{base}/metadata", **auth).status_code, 200)
