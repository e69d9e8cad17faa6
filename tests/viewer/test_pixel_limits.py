"""The viewer and picture exports refuse to decode an image past the pixel limits (issue 11).

The file is stored directly, as if ingested before the limits existed: a 2 KB JPEG whose
header declares 16000 x 16000 pixels. Nothing may allocate its 256 MB.
"""

from __future__ import annotations

import io
import tracemalloc

from portal import vault
from portal.models import Instance, Series
from tests.portal.test_ingest_fidelity import huge_jpeg_dicom
from tests.sharing.helpers import ShareTestCase
from viewer import mpr


class PixelLimitTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        mpr.clear_caches()
        self.series = Series.objects.create(
            study=self.study, series_uid=f"{self.study.study_uid}.77", modality="DX", number=7
        )
        data = huge_jpeg_dicom()
        Instance.objects.create(
            practice=self.practice, series=self.series, sop_instance_uid="1.2.3.77",
            sop_class_uid="1.2.840.10008.5.1.4.1.1.2", transfer_syntax_uid="1.2.840.10008.1.2.4.50",
            rows=16000, columns=16000, bits_allocated=8, photometric="MONOCHROME2",
            blob=vault.store(io.BytesIO(data)),
        )  # fmt: skip

    def peak(self, url: str) -> tuple[int, bytes]:
        tracemalloc.start()
        try:
            r = self.client.get(url)
            content = b"".join(r.streaming_content) if r.streaming else r.content
            return tracemalloc.get_traced_memory()[1], content, r.status_code
        finally:
            tracemalloc.stop()

    def test_the_viewer_refuses_to_decode_it(self) -> None:
        self.login(self.alice)
        peak, content, status = self.peak(f"/viewer/series/{self.series.code}/axial/0.jpg")
        self.assertEqual(status, 422)
        self.assertIn(b"more pixels than the viewer accepts", content)
        self.assertLess(peak, 64 << 20)

    def test_the_picture_export_leaves_it_out(self) -> None:
        self.sign_in()
        peak, content, status = self.peak(f"/s/download/series/{self.series.code}/pictures.zip")
        self.assertEqual(status, 200)
        self.assertNotIn(b".jpg", content)
        self.assertLess(peak, 64 << 20)
