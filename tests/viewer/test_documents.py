"""Objects that are not images: PDF shown as PDF, reports as text, key images marked."""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from unittest import mock

from portal import vault
from portal.demo.phantom import make_report_pdf
from portal.ingest import ingest_files
from portal.models import Series
from tests.base import BaseTestCase
from tests.dicom_samples import (
    encapsulated_pdf,
    identify,
    key_object_selection,
    needs_tools,
    sample,
    to_bytes,
)
from tests.portal.ingest_helpers import edited_dicom
from viewer import mpr


@needs_tools("pdf2dcm")
class DocumentsTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        mpr.clear_caches()
        self.login(self.alice)

    def ingest(self, files: dict[str, bytes]) -> None:
        with self.captureOnCommitCallbacks(execute=False):
            report = ingest_files(
                [(n, io.BytesIO(d)) for n, d in files.items()], practice=self.practice
            )
        self.assertEqual(report.rejected, 0, report.lines())

    def manifest(self, series: Series) -> dict:
        return self.client.get(f"/viewer/series/{series.code}/manifest.json").json()

    def only_new_series(self) -> Series:
        return Series.objects.exclude(study=self.study).get()

    def test_an_encapsulated_pdf_is_shown_as_the_pdf_it_holds(self) -> None:
        pdf = make_report_pdf(["Findings: none."])
        self.ingest({"report.dcm": encapsulated_pdf(pdf)})
        series = self.only_new_series()
        manifest = self.manifest(series)
        self.assertEqual(manifest["document"]["kind"], "pdf")
        self.assertEqual(manifest["error"], "")
        r = self.client.get(manifest["document"]["url"])
        self.assertEqual((r["Content-Type"], r.content), ("application/pdf", pdf))
        self.assertIn("no-store", r["Cache-Control"])

    def test_a_document_larger_than_any_header_is_kept_and_shown_whole(self) -> None:
        # A report with embedded photographs (or an intraoral scan's STL) runs to tens of MB.
        pdf = make_report_pdf(["Findings: none."])
        pdf = pdf[:-6] + b"%" + b"x" * (20 * 2**20) + b"\n%%EOF\n"
        self.ingest({"report.dcm": encapsulated_pdf(pdf)})
        manifest = self.manifest(self.only_new_series())
        self.assertEqual(manifest["document"]["kind"], "pdf")
        r = self.client.get(manifest["document"]["url"])
        self.assertEqual(hashlib.sha256(r.content).digest(), hashlib.sha256(pdf).digest())

    def test_a_document_cut_short_is_refused_for_it(self) -> None:
        pdf = make_report_pdf(["Findings: none."])
        pdf = pdf[:-6] + b"%" + b"x" * (2 * 2**20) + b"\n%%EOF\n"
        data = encapsulated_pdf(pdf)[: 2**20]
        report = ingest_files([("cut.dcm", io.BytesIO(data))], practice=self.practice)
        self.assertEqual(report.rejected, 1)
        self.assertIn("shorter than", report.files[0].reason)

    def test_a_document_cut_inside_its_element_header_is_refused(self) -> None:
        data = encapsulated_pdf(make_report_pdf(["Findings: none."]))
        at = data.index(b"\x42\x00\x11\x00OB")
        report = ingest_files([("cut.dcm", io.BytesIO(data[: at + 6]))], practice=self.practice)
        self.assertEqual(report.rejected, 1)
        self.assertIn("shorter than", report.files[0].reason)

    def test_a_structured_report_reads_as_text(self) -> None:
        self.ingest({"sr.dcm": to_bytes(identify(sample("test-SR.dcm"), 1))})
        manifest = self.manifest(self.only_new_series())
        self.assertEqual(manifest["document"]["kind"], "sr")
        text = self.client.get(manifest["document"]["url"]).content.decode()
        self.assertIn("Diagnosis", text)
        self.assertIn("Diameter: 3 cm", text)
        self.assertIn("Code: Sample Text\n  A\n  B\n", text)
        self.assertNotIn("\r", text)

    def test_a_video_browsers_cannot_play_is_offered_for_download_with_its_reason(self) -> None:
        def mpeg2(ds) -> None:  # noqa: ANN001
            from pydicom.encaps import encapsulate

            ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
            ds.PixelData = encapsulate([b"\x00\x00\x01\xba" + b"\x00" * 12])  # MPEG-2 PS
            ds["PixelData"].VR = "OB"

        self.ingest({"clip.dcm": edited_dicom(mpeg2, n=40)})
        series = Series.objects.exclude(study=self.study).get()
        error = self.manifest(series)["error"]
        self.assertTrue(error.startswith("Available to download, not viewable here: "), error)
        self.assertIn("video", error)

    def test_an_h264_video_in_mp4_plays_in_the_browser(self) -> None:
        mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 40

        def h264(ds) -> None:  # noqa: ANN001
            from pydicom.encaps import encapsulate

            ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.102"
            ds.PixelData = encapsulate([mp4])
            ds["PixelData"].VR = "OB"

        self.ingest({"clip.dcm": edited_dicom(h264, n=41)})
        manifest = self.manifest(self.only_new_series())
        self.assertEqual(manifest["document"]["kind"], "video")
        r = self.client.get(manifest["document"]["url"])
        body = b"".join(r.streaming_content)
        self.assertEqual((r["Content-Type"], body), ("video/mp4", mp4))
        self.assertEqual(r["Content-Length"], str(len(mp4)))

    def test_a_long_video_streams_without_being_held_in_memory(self) -> None:
        mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 96_000

        def h264(ds) -> None:  # noqa: ANN001
            from pydicom.encaps import encapsulate

            ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.102"
            ds.PixelData = encapsulate([mp4], fragments_per_frame=12)
            ds["PixelData"].VR = "OB"

        self.ingest({"clip.dcm": edited_dicom(h264, n=42)})
        url = self.manifest(self.only_new_series())["document"]["url"]
        tracemalloc.start()
        try:
            r = self.client.get(url)
            digest, size = hashlib.sha256(), 0
            for chunk in r.streaming_content:
                digest.update(chunk)
                size += len(chunk)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertEqual((size, digest.digest()), (len(mp4), hashlib.sha256(mp4).digest()))
        self.assertLess(peak, 8 * 2**20, f"{peak / 2**20:.0f} MiB held for a 25 MB video")

    def test_a_video_in_thousands_of_tiny_fragments_streams_in_one_pass(self) -> None:
        mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 40
        pieces = [mp4[:32]] + [mp4[i : i + 2] for i in range(32, len(mp4), 2)]

        def h264(ds) -> None:  # noqa: ANN001
            item = b"\xfe\xff\x00\xe0"
            ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.102"
            # An empty offset table, then 5,000 items of two bytes each.
            ds.PixelData = (
                item + bytes(4) + b"".join(item + len(p).to_bytes(4, "little") + p for p in pieces)
            )
            ds["PixelData"].VR = "OB"

        self.ingest({"clip.dcm": edited_dicom(h264, n=43)})
        url = self.manifest(self.only_new_series())["document"]["url"]
        with mock.patch.object(vault, "iter_range", wraps=vault.iter_range) as reads:
            r = self.client.get(url)
            body = b"".join(r.streaming_content)
        self.assertEqual(body, mp4)
        self.assertLessEqual(reads.call_count, 3)  # the header, the item list, the video

    def test_key_images_are_marked_in_their_series(self) -> None:
        files = {}
        for k in range(3):
            ds = identify(sample("CT_small.dcm"), 1, study="9")
            ds.SOPInstanceUID = f"{ds.SeriesInstanceUID}.{k + 1}"
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.InstanceNumber = k + 1
            ds.ImagePositionPatient = [0, 0, 2.0 * k]
            files[f"IM{k}.dcm"] = to_bytes(ds)
        second = (ds.SOPClassUID, f"{ds.SeriesInstanceUID}.2")
        kos = key_object_selection(ds.StudyInstanceUID, ds.SeriesInstanceUID, second)
        kos = identify(kos, 2, study="9")
        files["kos.dcm"] = to_bytes(kos)
        self.ingest(files)
        images = Series.objects.get(series_uid=ds.SeriesInstanceUID)
        self.assertEqual(self.manifest(images)["key_images"], [1])
        kos_series = Series.objects.get(series_uid=kos.SeriesInstanceUID)
        self.assertIn("key images", self.manifest(kos_series)["error"])
