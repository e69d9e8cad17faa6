"""A de-identified copy of a study for teaching or a second opinion, as a ZIP download.

Each file is read from the vault, de-identified in memory (portal.deidentify, with the
practice's options) and streamed; the stored original is never altered. A DICOMDIR indexes
the copies; README.txt lists what was left out and why. Audited as a download.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pydicom
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET
from zipstream import ZipStream

import audit
from audit.models import Action
from portal import deidentify, vault
from portal.access import fetch_or_404
from portal.models import Instance
from portal.workspace.decorators import staff_required
from sharing.dicomdir import DicomRef, build_dicomdir

# A file is de-identified in memory; a larger one is left out with the reason.
MAX_FILE_BYTES = 512 * 2**20


@require_GET
@staff_required
def deidentified_study(request: HttpRequest, code) -> HttpResponse:  # noqa: ANN001
    """Stream the study's DICOM files de-identified (PS3.15 Annex E basic profile)."""
    scope = request.scope
    studies = scope.studies() if scope.can_download else scope.studies().none()
    study = fetch_or_404(request, scope, studies.select_related("patient"), code=code)
    practice = scope.practice
    options = deidentify.Options(clean_pixels=practice.deid_clean_pixels, dates=practice.deid_dates)
    audit.record(
        Action.DOWNLOAD,
        request=request,
        patient=study.patient,
        obj=study,
        detail={
            "deidentified": True,
            "clean_pixels": options.clean_pixels,
            "dates": options.dates,
        },
        **scope.audit_kwargs(),
    )
    instances = list(
        Instance.objects.filter(series__study=study, series__in=scope.series())
        .select_related("blob")
        .order_by("series__number", "series__pk", "instance_number", "pk")
    )
    zs = _archive(instances, deidentify.Export(options))
    response = StreamingHttpResponse(zs, content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="deidentified.zip"'
    response["Cache-Control"] = "no-store, private"
    return response


def _archive(instances: list[Instance], export: deidentify.Export) -> ZipStream:
    """Return a ZIP that makes each copy only when the one before it has been sent."""
    zs = ZipStream(sized=False)
    refs: list[tuple[str, DicomRef]] = []
    left_out: list[str] = []
    copies = _copies(instances, export, refs, left_out)

    def add_next() -> None:
        item = next(copies, None)
        if item is not None:
            zs.add(_then(item[1], add_next), item[0])
            return
        if refs:
            zs.add(build_dicomdir([_Member(name, ref) for name, ref in refs]), "DICOMDIR")
        readme = [
            "De-identified copy: DICOM PS3.15 Annex E, "
            + deidentify.method_text(export.options)
            + ".",
            f"{len(refs)} of {len(instances)} files included.",
            *left_out,
            "",
        ]
        zs.add("\n".join(readme).encode(), "README.txt")

    add_next()
    return zs


def _copies(
    instances: list[Instance],
    export: deidentify.Export,
    refs: list[tuple[str, DicomRef]],
    left_out: list[str],
) -> Iterator[tuple[str, bytes]]:
    for n, instance in enumerate(instances, start=1):
        if instance.blob.plain_size > MAX_FILE_BYTES:
            left_out.append(f"file {n}: larger than a de-identified copy allows")
            continue
        ds = pydicom.dcmread(io.BytesIO(vault.read_bytes(instance.blob)))
        burned = deidentify.has_burned_in_annotation(ds)
        try:
            deidentify.deidentify(ds, export)
        except deidentify.LeftOut as exc:
            left_out.append(f"file {n}: left out, {exc}")
            continue
        if burned:  # kept: the practice chose no Clean Pixel Data
            left_out.append(f"file {n}: included, but its pixels may show identifying text")
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        name = f"DICOM/IM{len(refs) + 1:06d}"
        refs.append((name, DicomRef.from_dataset(ds)))
        yield name, out.getvalue()


def _then(data: bytes, callback) -> Iterator[bytes]:  # noqa: ANN001
    yield data
    callback()


class _Member:
    def __init__(self, arcname: str, dicom: DicomRef) -> None:
        self.arcname, self.dicom = arcname, dicom
