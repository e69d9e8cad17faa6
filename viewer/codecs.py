"""Decoders the viewer adds to pydicom's: 12-bit JPEG Extended through GDCM.

pydicom's GDCM plugin refuses 12-bit JPEG Extended (1.2.840.10008.1.2.4.51), although GDCM
decodes it with its own 12-bit IJG build (BSD-licensed; the GPL libjpeg plugin is never
used). The frame is handed to GDCM in memory, as pydicom's plugin does for other syntaxes.
"""

from __future__ import annotations

from typing import cast

from pydicom.pixels import get_decoder
from pydicom.uid import JPEGExtended12Bit

PLUGIN = "gdcm-12bit"


def _decode_frame(src: bytes, runner) -> bytes:  # noqa: ANN001 - pydicom's DecodeRunner
    import gdcm

    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(src)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    elem = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    elem.SetValue(fragments.__ref__())
    img = gdcm.Image()
    img.SetNumberOfDimensions(2)
    img.SetDimensions((runner.columns, runner.rows, 1))
    img.SetDataElement(elem)
    pi_type = gdcm.PhotometricInterpretation.GetPIType(runner.photometric_interpretation)
    img.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(pi_type))
    if runner.samples_per_pixel > 1:
        img.SetPlanarConfiguration(runner.planar_configuration)
    img.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGExtendedProcess2_4))
    bits = runner.bits_stored
    img.SetPixelFormat(
        gdcm.PixelFormat(
            runner.samples_per_pixel,
            runner.bits_allocated,
            bits,
            bits - 1,
            runner.pixel_representation,
        )
    )
    frame = img.GetBuffer().encode("utf-8", "surrogateescape")
    expected = runner.rows * runner.columns * runner.samples_per_pixel * runner.bits_allocated // 8
    if len(frame) != expected:
        raise ValueError("GDCM could not decode the JPEG frame")
    return cast(bytes, frame)


DECODER_DEPENDENCIES = {JPEGExtended12Bit: ("gdcm>=3.0.10",)}


def is_available(uid: str) -> bool:
    """Return True if GDCM is installed and uid is 12-bit JPEG Extended."""
    try:
        import gdcm  # noqa: F401
    except ImportError:
        return False
    return uid == JPEGExtended12Bit


def register() -> None:
    """Add the 12-bit JPEG Extended decoder to pydicom once per process (tried last)."""
    decoder = get_decoder(JPEGExtended12Bit)
    if PLUGIN not in decoder.available_plugins and PLUGIN not in decoder.missing_dependencies:
        try:
            decoder.add_plugin(PLUGIN, ("viewer.codecs", "_decode_frame"))
        except ValueError:  # another thread added it meanwhile
            pass


register()
