"""The conformance suite: every file kept and shared byte-identically, every image rendered as
dcmtk renders it (PSNR >= 45 dB or exact), and docs/conformance.md generated from the results.

Regenerate the document after a change: PORTAL_WRITE_CONFORMANCE=1 pytest tests/conformance
"""

from __future__ import annotations

import io
import math
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.uid import UID

from portal.ingest import ingest_files
from portal.models import Series, Study
from sharing.models import ShareLink
from tests.conformance.corpus import PATIENT, Case, cases
from tests.dicom_samples import dcmtk_render, needs_tools, psnr
from tests.sharing.helpers import PASSWORD, ShareTestCase
from viewer import mpr

DOC = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"
MIN_PSNR = 45.0

pytestmark = needs_tools("dcmj2pnm", "dcml2pnm", "dcmcjpeg", "dcmcjpls", "pdf2dcm")


def _name(uid: str) -> str:
    return getattr(UID(uid), "name", "") or uid


class ConformanceTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        mpr.clear_caches()
        self.corpus = cases()
        files = [(f"{c.name}.dcm", io.BytesIO(c.data)) for c in self.corpus]
        with self.captureOnCommitCallbacks(execute=False):
            self.report = ingest_files(files, practice=self.practice)
        self.conf_study = Study.objects.get(patient__patient_id=PATIENT)

    def render(self, case: Case, series: Series) -> tuple[str, np.ndarray | None, dict]:
        manifest = self.client.get(f"/viewer/series/{series.code}/manifest.json").json()
        if manifest.get("document") or manifest.get("error"):
            return manifest.get("error") or "", None, manifest
        query = f"c={case.window[0]}&w={case.window[1]}&" if case.window else ""
        query += case.query
        r = self.client.get(f"/viewer/series/{series.code}/axial/0.png?{query}")
        if r.status_code != 200:
            return r.content.decode()[:200], None, manifest
        return "", np.asarray(Image.open(io.BytesIO(r.content))), manifest

    def reference(self, case: Case) -> np.ndarray | None:
        if case.reference is None:
            return None
        data = case.source if case.reference == "source" else case.data
        if case.tool == "dcml2pnm":
            return _dcml2pnm(data, case.window)
        return dcmtk_render(data, window=case.window, extra=case.dcmtk_args)

    def downloaded(self) -> dict[str, bytes]:
        issued = self.issue(study=self.conf_study, recipient_kind=ShareLink.Recipient.PATIENT)
        client = self.client_class()
        client.get(issued.path)
        r = client.post("/s/", {"password": PASSWORD, "birth_date": "1970-01-01"})
        self.assertEqual(r.status_code, 303)
        body = b"".join(client.get("/s/download/share.zip").streaming_content)
        out = {}
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            for name in zf.namelist():
                if name.startswith("DICOM/") and not name.endswith("DICOMDIR"):
                    data = zf.read(name)
                    uid = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID
                    out[str(uid)] = data
        return out

    def test_every_file_is_kept_shared_and_rendered_as_dcmtk_renders_it(self) -> None:
        self.assertEqual(self.report.rejected, 0, self.report.lines())
        self.assertEqual(self.report.stored, len(self.corpus), self.report.lines())
        self.login(self.alice)
        downloads = self.downloaded()
        rows = []
        for case in self.corpus:
            with self.subTest(case.name):
                ds = pydicom.dcmread(io.BytesIO(case.data), stop_before_pixels=True, force=True)
                uid = str(ds.SOPInstanceUID)
                got = downloads.get(uid, b"")
                identical = got == case.data or (case.bare and got.endswith(case.data))
                self.assertTrue(identical, "not downloaded byte-identically")
                series = Series.objects.get(series_uid=ds.SeriesInstanceUID)
                reason, image, manifest = self.render(case, series)
                expected = self.reference(case)
                value = None
                if expected is not None:
                    self.assertIsNotNone(image, reason)
                    value = psnr(image, expected)
                    self.assertGreaterEqual(value, MIN_PSNR)
                instance = series.instances.get()
                rows.append(_row(case, instance, image, value, identical, reason, manifest))
        self.check_document(rows)

    def check_document(self, rows: list[dict]) -> None:
        text = _document(rows)
        if os.environ.get("PORTAL_WRITE_CONFORMANCE"):
            DOC.parent.mkdir(exist_ok=True)
            DOC.write_text(text)
        mask = re.compile(r"\d+\.\d dB")
        self.assertTrue(DOC.exists(), "run with PORTAL_WRITE_CONFORMANCE=1 to write the document")
        self.assertEqual(
            mask.sub("N dB", DOC.read_text()),
            mask.sub("N dB", text),
            "docs/conformance.md is out of date: run with PORTAL_WRITE_CONFORMANCE=1",
        )


def _dcml2pnm(data: bytes, window: tuple[float, float] | None) -> np.ndarray:
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dcml2pnm-") as tmp:
        src, out = Path(tmp) / "in.dcm", Path(tmp) / "out.png"
        src.write_bytes(data)
        args = ["dcml2pnm", "--write-png"]
        if window:
            args += ["--set-window", str(window[0]), str(window[1])]
        subprocess.run([*args, str(src), str(out)], check=True, capture_output=True, timeout=60)
        return np.asarray(Image.open(out))


def _row(case, instance, image, value, identical, reason, manifest) -> dict:  # noqa: ANN001
    if manifest.get("document"):
        kind = manifest["document"]["kind"]
        rendered = {"pdf": "shown as PDF", "sr": "shown as text", "video": "plays (MP4)"}[kind]
    elif image is not None:
        rendered = "yes"
    else:
        rendered = "download only: " + reason.removeprefix(
            "Available to download, not viewable here: "
        ).rstrip(".")
    if value is None:
        quality = "—" if image is None else "no dcmtk reference"
    else:
        quality = "exact" if math.isinf(value) else f"{value:.1f} dB"
    against = {"self": "dcmtk", "source": "dcmtk, uncompressed source"}.get(
        case.reference or "", ""
    )
    return {
        "case": case.name,
        "what": case.what,
        "class": _name(instance.sop_class_uid),
        "syntax": _name(instance.transfer_syntax_uid),
        "stored": "yes",
        "rendered": rendered,
        "psnr": quality + (f" ({against})" if value is not None else ""),
        "identical": "yes" if identical else "NO",
        "volume": "yes" if "coronal" in manifest.get("planes", {}) else "",
    }


def _document(rows: list[dict]) -> str:
    lines = [
        "# DICOM conformance",
        "",
        "Generated by `tests/conformance/test_conformance.py` from what it proves on every CI run",
        "(`PORTAL_WRITE_CONFORMANCE=1 .venv/bin/pytest tests/conformance` rewrites it). Each file",
        "below is ingested, shared, downloaded in the recipient's ZIP and compared byte for byte",
        "with the original; each image is rendered by the viewer (lossless PNG) and compared",
        "pixel by pixel with dcmtk's `dcmj2pnm`/`dcml2pnm` at the same window:",
        f"PSNR >= {MIN_PSNR:.0f} dB or exact. The corpus is pydicom's bundled test files and",
        "transcodes made by the suite with dcmtk (`dcmconv`, `dcmcjpeg`, `dcmcjpls`, `dcmcrle`,",
        "`pdf2dcm`) and GDCM.",
        "",
        "| case | what it exercises | SOP class | transfer syntax | stored | rendered | PSNR | "
        "byte-identical |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['what']} | {r['class']} | {r['syntax']} | {r['stored']} | "
            f"{r['rendered']} | {r['psnr']} | {r['identical']} |"
        )
    classes = sorted({r["class"] for r in rows})
    syntaxes = sorted({r["syntax"] for r in rows})
    shown = sorted({r["class"] for r in rows if r["rendered"] == "yes"})
    volumes = sorted({r["class"] for r in rows if r["volume"]})
    lines += [
        "",
        "## Stored and shared",
        "",
        "Any well-formed DICOM file is stored and shared byte-identically, whatever its transfer",
        "syntax or SOP class; a dataset without the Part 10 header is stored with one added in",
        "front of its unchanged bytes. Proven for these SOP classes:",
        "",
        *[f"- {c}" for c in classes],
        "",
        "and these transfer syntaxes:",
        "",
        *[f"- {s}" for s in syntaxes],
        "",
        "## Rendered",
        "",
        *[f"- {c}" for c in shown],
        "",
        "Encapsulated PDF is shown as the PDF it holds, Structured Reports as text, Key Object",
        "Selection marks key images in their series; H.264 video in an MP4 container plays in",
        "the browser; other video and objects without an image are offered for download with",
        "the reason they are not shown.",
        "",
        "## Reformatted (coronal and sagittal)",
        "",
        "Single files of the corpus that form a volume on their own:",
        "",
        *[f"- {c}" for c in volumes],
        "",
        "Series of single-frame CT/MR slices form volumes from Image Position and Orientation",
        "(any orientation, head at the top whichever way the normal points); unevenly spaced or",
        "tilted slices are not reformatted, and the viewer says why",
        "(`tests/viewer/test_geometry.py`).",
        "",
    ]
    return "\n".join(lines)
