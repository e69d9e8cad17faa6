"""The conformance corpus: pydicom's bundled samples and transcodes made here with dcmtk/GDCM.

Each case is one DICOM file of one study; `reference` says what the viewer's rendering is
compared with: "self" (dcmtk renders the file itself), "source" (dcmtk renders the
uncompressed file it was transcoded from, for syntaxes dcmtk cannot decode), or None
(an object with no image).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from portal.demo.phantom import make_report_pdf
from tests.dicom_samples import (
    bare_dataset,
    encapsulated_pdf,
    enhanced_ct,
    identify,
    key_object_selection,
    sample,
    to_bytes,
)

PATIENT = "CONF-1"
STUDY = "5"


@dataclass
class Case:
    name: str
    what: str
    make: Callable[[int], bytes]  # the case's number -> file bytes
    reference: str | None = "self"
    window: tuple[float, float] | None = (40, 400)
    tool: str = "dcmj2pnm"
    source: bytes | None = None  # filled for reference == "source"
    bare: bool = False  # a dataset without the Part 10 header
    query: str = ""  # more of the viewer's slice URL
    dcmtk_args: tuple[str, ...] = ()

    data: bytes = b""


def _id(ds: Dataset, n: int) -> Dataset:
    return identify(ds, n, patient_id=PATIENT, study=STUDY)


def _tool(args: list[str], data: bytes) -> bytes:
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        src, out = Path(tmp) / "in.dcm", Path(tmp) / "out.dcm"
        src.write_bytes(data)
        subprocess.run([*args, str(src), str(out)], check=True, capture_output=True, timeout=60)
        return out.read_bytes()


def _gdcm(data: bytes, syntax: str) -> bytes:
    import gdcm

    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        src, out = Path(tmp) / "in.dcm", Path(tmp) / "out.dcm"
        src.write_bytes(data)
        reader = gdcm.ImageReader()
        reader.SetFileName(str(src))
        assert reader.Read()
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(getattr(gdcm.TransferSyntax, syntax)))
        change.SetInput(reader.GetImage())
        assert change.Change()
        writer = gdcm.ImageWriter()
        writer.SetFileName(str(out))
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        assert writer.Write()
        return out.read_bytes()


def ct(n: int) -> Dataset:
    return _id(sample("CT_small.dcm"), n)


def ct12(n: int) -> Dataset:
    """CT_small as 12-bit unsigned (BitsStored 12), as dental CBCTs often store it."""
    ds = ct(n)
    ds.PixelData = np.clip(ds.pixel_array.astype(np.int32), 0, 4095).astype(np.uint16).tobytes()
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
    return ds


def ct8(n: int) -> Dataset:
    ds = ct(n)
    ds.PixelData = (np.clip(ds.pixel_array, 0, 2047) // 8).astype(np.uint8).tobytes()
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.RescaleIntercept, ds.RescaleSlope = 0, 1
    return ds


def ct16u(n: int) -> Dataset:
    ds = ct(n)
    ds.PixelData = (ds.pixel_array.astype(np.int32) + 1024).astype(np.uint16).tobytes()
    ds.PixelRepresentation, ds.RescaleIntercept = 0, -2048
    return ds


def mono1(n: int) -> Dataset:
    ds = ct(n)
    ds.PhotometricInterpretation = "MONOCHROME1"
    return ds


def plut(photometric: str, shape: str) -> Callable[[int], bytes]:
    def make(n: int) -> bytes:
        ds = ct(n)
        ds.PhotometricInterpretation, ds.PresentationLUTShape = photometric, shape
        return to_bytes(ds)

    return make


def voi_lut(n: int) -> bytes:
    """CT_small with a VOI LUT (an S-curve over -200..+300 HU, 12-bit out) and no window."""
    ds = ct(n)
    for keyword in ("WindowCenter", "WindowWidth"):
        if keyword in ds:
            delattr(ds, keyword)
    x = np.arange(512)
    table = (4095 / (1 + np.exp(-(x - 256) / 48.0))).astype(np.uint16)
    item = Dataset()
    item.LUTDescriptor = [512, 65536 - 200, 12]
    item["LUTDescriptor"].VR = "US"
    item.LUTData = table.tobytes()
    item["LUTData"].VR = "OW"
    item.LUTExplanation = "S curve"
    ds.VOILUTSequence = [item]
    return to_bytes(ds)


def _sample(name: str) -> Callable[[int], bytes]:
    return lambda n: to_bytes(_id(sample(name), n))


def _transcode(make: Callable[[int], Dataset], args: list[str]) -> Callable[[int], bytes]:
    return lambda n: _tool(args, to_bytes(make(n)))


def _enhanced(n: int) -> bytes:
    return to_bytes(_id(enhanced_ct(), n))


def _pdf(n: int) -> bytes:
    ds = pydicom.dcmread(__import__("io").BytesIO(encapsulated_pdf(make_report_pdf(["Report"]))))
    return to_bytes(_id(ds, n))


def _kos(n: int) -> bytes:
    target = ct(1)
    ds = key_object_selection(
        target.StudyInstanceUID,
        target.SeriesInstanceUID,
        (target.SOPClassUID, target.SOPInstanceUID),
    )
    return to_bytes(_id(ds, n))


def _video(n: int) -> bytes:
    from pydicom.encaps import encapsulate

    ds = ct(n)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.102"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.4.1"
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 8, 8, 7
    ds.PixelRepresentation, ds.SamplesPerPixel, ds.PhotometricInterpretation = (
        0,
        3,
        "YBR_PARTIAL_420",
    )
    ds.PixelData = encapsulate([b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 12])
    ds["PixelData"].VR = "OB"
    return to_bytes(ds)


def _mpeg2(n: int) -> bytes:
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(__import__("io").BytesIO(_video(n)))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
    ds.PixelData = encapsulate([b"\x00\x00\x01\xba" + b"\x00" * 12])  # an MPEG-2 stream
    ds["PixelData"].VR = "OB"
    return to_bytes(ds)


def _bare(n: int) -> bytes:
    return bare_dataset(ct(n))


def cases() -> list[Case]:
    """Return the corpus, each file made and numbered (its series number is its position)."""
    made = [
        Case("CT_small", "explicit VR little endian, signed 16-bit", lambda n: to_bytes(ct(n))),
        Case(
            "CT implicit",
            "implicit VR little endian (dcmconv +ti)",
            _transcode(ct, ["dcmconv", "+ti"]),
        ),
        Case(
            "CT big endian",
            "explicit VR big endian (dcmconv +tb)",
            _transcode(ct, ["dcmconv", "+tb"]),
        ),
        Case(
            "CT deflated", "deflated explicit VR (dcmconv +td)", _transcode(ct, ["dcmconv", "+td"])
        ),
        Case(
            "CT without Part 10 header",
            "bare dataset, header added at ingest",
            _bare,
            reference="source",
            bare=True,
        ),
        Case("CT 16-bit unsigned", "unsigned 16-bit, rescale -2048", lambda n: to_bytes(ct16u(n))),
        Case(
            "CT 12-bit",
            "unsigned, 12 bits stored",
            lambda n: to_bytes(ct12(n)),
            window=(1000, 2000),
        ),
        Case("CT 8-bit", "unsigned 8-bit", lambda n: to_bytes(ct8(n)), window=(128, 256)),
        Case("CT MONOCHROME1", "inverted grey scale", lambda n: to_bytes(mono1(n))),
        Case(
            "Presentation LUT INVERSE", "MONOCHROME2 shown inverted", plut("MONOCHROME2", "INVERSE")
        ),
        Case(
            "MONOCHROME1, LUT IDENTITY",
            "the shape decides polarity",
            plut("MONOCHROME1", "IDENTITY"),
        ),
        Case(
            "VOI LUT",
            "VOI LUT Sequence, no window",
            voi_lut,
            window=None,
            query="lut=1",
            dcmtk_args=("--use-voi-lut", "1"),
        ),
        Case(
            "1-bit segmentation",
            "1 bit allocated, functional groups",
            _sample("liver_1frame.dcm"),
            window=(0.5, 1),
        ),
        Case("JPEG lossless P14", "dcmcjpeg +el", _transcode(ct, ["dcmcjpeg", "+el"])),
        Case("JPEG lossless SV1", "dcmcjpeg +e1", _transcode(ct, ["dcmcjpeg", "+e1"])),
        Case(
            "JPEG extended 12-bit",
            "dcmcjpeg +ee, decoded by GDCM",
            _transcode(ct12, ["dcmcjpeg", "+ee"]),
            window=(1000, 2000),
        ),
        Case(
            "JPEG extended 12-bit sample",
            "pydicom's JPGExtended.dcm",
            _sample("JPGExtended.dcm"),
            window=(128, 256),
        ),
        Case(
            "JPEG baseline grey",
            "dcmcjpeg +eb on 8-bit",
            _transcode(ct8, ["dcmcjpeg", "+eb"]),
            window=(128, 256),
        ),
        Case(
            "JPEG baseline YBR",
            "dcmtk's YBR_FULL colour",
            _sample("SC_rgb_jpeg_dcmtk.dcm"),
            window=None,
        ),
        Case(
            "JPEG baseline YBR 4:2:2",
            "30 frames, first shown",
            _sample("examples_ybr_color.dcm"),
            window=None,
        ),
        Case("JPEG-LS lossless", "dcmcjpls", _transcode(ct, ["dcmcjpls"]), tool="dcml2pnm"),
        Case(
            "JPEG-LS near-lossless",
            "dcmcjpls +en on 12-bit",
            _transcode(ct12, ["dcmcjpls", "+en"]),
            tool="dcml2pnm",
            window=(1000, 2000),
        ),
        Case("RLE", "dcmcrle", _transcode(ct, ["dcmcrle"])),
        Case("RLE RGB", "pydicom's SC_rgb_rle.dcm", _sample("SC_rgb_rle.dcm"), window=None),
        Case(
            "JPEG 2000 lossless",
            "GDCM transcode (dcmtk cannot decode it)",
            lambda n: _gdcm(to_bytes(ct12(n)), "JPEG2000Lossless"),
            reference="source",
            window=(1000, 2000),
        ),
        Case(
            "JPEG 2000",
            "GDCM transcode, lossy syntax",
            lambda n: _gdcm(to_bytes(ct12(n)), "JPEG2000"),
            reference="source",
            window=(1000, 2000),
        ),
        Case("RGB", "uncompressed RGB", _sample("examples_rgb_color.dcm"), window=None),
        Case(
            "YBR_FULL_422 native",
            "uncompressed YBR 4:2:2",
            _sample("SC_ybr_full_422_uncompressed.dcm"),
            window=None,
        ),
        Case(
            "Palette colour",
            "PALETTE COLOR, shown in colour",
            _sample("examples_palette.dcm"),
            window=None,
        ),
        Case("Overlay", "60xx overlay drawn", _sample("examples_overlay.dcm"), window=(600, 1200)),
        Case("Enhanced CT", "rescale/window in functional groups", _enhanced),
        Case("Encapsulated PDF", "pdf2dcm", _pdf, reference=None, window=None),
        Case(
            "Structured report",
            "pydicom's test-SR.dcm",
            _sample("test-SR.dcm"),
            reference=None,
            window=None,
        ),
        Case("Key Object Selection", "marks key images", _kos, reference=None, window=None),
        Case("RT Plan", "no image", _sample("rtplan.dcm"), reference=None, window=None),
        Case("ECG waveform", "no image", _sample("waveform_ecg.dcm"), reference=None, window=None),
        Case(
            "MPEG-4 video",
            "H.264 in MP4, played by the browser",
            _video,
            reference=None,
            window=None,
        ),
        Case(
            "MPEG-2 video",
            "no browser plays it: download only",
            _mpeg2,
            reference=None,
            window=None,
        ),
    ]
    for n, case in enumerate(made, start=11):
        case.data = case.make(n)
        if case.reference == "source":
            case.source = _source(case, n)
    return made


def _source(case: Case, n: int) -> bytes:
    if case.bare:
        return to_bytes(ct(n))
    return to_bytes(ct12(n))
