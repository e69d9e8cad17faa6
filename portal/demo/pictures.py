"""Synthetic intraoral photos and report PDFs for demos and tests."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def make_photo_jpeg(seed: int = 0, size: tuple[int, int] = (640, 480)) -> bytes:
    """Return a synthetic intraoral-looking JPEG photo: gums, a row of teeth, shadows."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    vignette = 1.0 - 0.55 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2) * 2
    base = np.array([170, 70, 80], dtype=np.float32) + rng.uniform(-15, 15, 3)
    rgb = np.clip(base[None, None, :] * vignette[..., None], 0, 255).astype(np.uint8)
    image = Image.fromarray(rgb, "RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((w * 0.05, h * 0.62, w * 0.95, h * 1.15), fill=(60, 15, 25))
    count = int(rng.integers(6, 9))
    tooth_w = w * 0.8 / count
    for i in range(count):
        left = w * 0.1 + i * tooth_w
        top = h * (0.25 + 0.06 * abs(i - (count - 1) / 2) / count) + rng.uniform(-5, 5)
        tint = float(rng.uniform(-14, 8))
        shade = (int(236 + tint), int(228 + tint), int(206 + tint * 1.5))
        draw.rounded_rectangle(
            (left + 3, top, left + tooth_w - 3, h * 0.68), radius=tooth_w / 3, fill=shade
        )
    image = image.filter(ImageFilter.GaussianBlur(2))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _pdf_text(line: str) -> str:
    raw = line.encode("cp1252", errors="replace").decode("latin-1")
    return raw.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_report_pdf(text_lines: list[str]) -> bytes:
    """Return a minimal valid one-page PDF showing text_lines in Helvetica."""
    ops = ["BT", "/F1 12 Tf", "16 TL", "56 780 Td"]
    for line in text_lines:
        ops.append(f"({_pdf_text(line)}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
