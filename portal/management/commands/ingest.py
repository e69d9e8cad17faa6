"""Ingest DICOM files, photos and PDFs from a file, a folder or a ZIP archive."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal.ingest import build_previews_for, ingest_path
from portal.models import Patient, Practice


class Command(BaseCommand):
    help = (
        "Ingest a file, a folder (recursively) or a .zip archive of DICOM files, JPEG/PNG "
        "photos and PDFs; print one line per file and a summary. Exit status 0 when every "
        "file was stored or already present, 1 when any file was rejected."
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("path", help="File, folder or .zip archive to ingest.")
        parser.add_argument(
            "--practice",
            metavar="SLUG",
            help="Practice to ingest into (may be omitted when there is only one).",
        )
        parser.add_argument(
            "--patient",
            metavar="PATIENT_ID",
            help="Record number of the patient that photos and PDFs belong to.",
        )

    def handle(self, *args, **options) -> None:
        path = Path(options["path"])
        if not path.exists():
            raise CommandError(f"No such file or folder: {path}")
        practice = self._practice(options["practice"])
        patient = None
        if options["patient"]:
            patient = Patient.objects.filter(
                practice=practice, patient_id=options["patient"]
            ).first()
            if patient is None:
                raise CommandError("No patient with that Patient ID in this practice.")
        report = ingest_path(path, practice=practice, patient=patient, previews=False)
        for line in report.lines():
            self.stdout.write(line)
        self.stdout.write(report.summary())
        self.stdout.flush()
        # After the report: in laptop mode thumbnails are built here, in this process.
        build_previews_for(report)
        if report.rejected:
            noun = "file was" if report.rejected == 1 else "files were"
            raise CommandError(f"{report.rejected} {noun} rejected", returncode=1)

    def _practice(self, slug: str | None) -> Practice:
        if slug:
            practice = Practice.objects.filter(slug=slug).first()
            if practice is None:
                raise CommandError(f"No practice with slug {slug!r}.")
            return practice
        practices = list(Practice.objects.all()[:2])
        if len(practices) == 1:
            return practices[0]
        if not practices:
            raise CommandError("There is no practice yet; create one first.")
        raise CommandError("There is more than one practice: choose one with --practice SLUG.")
