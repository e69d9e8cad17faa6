"""List a study's files: transfer syntax, SOP class, whether the viewer shows it and why not."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from pydicom.uid import UID

from portal.models import Instance, Study
from viewer.objects import render_check


def _name(uid: str) -> str:
    return getattr(UID(uid), "name", "") or uid


class Command(BaseCommand):
    help = (
        "For each file of a study (Study Instance UID or the study's code): transfer syntax, "
        "SOP class, whether the viewer renders it, and the reason when it does not."
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("study", help="Study Instance UID, or the study's code (UUID).")
        parser.add_argument("--practice", metavar="SLUG", help="Practice, if the UID is shared.")

    def handle(self, *args, **options) -> None:
        study = self._study(options["study"], options["practice"])
        instances = (
            Instance.objects.filter(series__study=study)
            .select_related("blob", "series")
            .order_by("series__number", "series__pk", "instance_number", "pk")
        )
        shown = 0
        for n, instance in enumerate(instances, start=1):
            kind, reason = render_check(instance)
            shown += not reason
            self.stdout.write(
                f"{n:4d}  series {instance.series.number or 0:<4d} {kind:<6s} "
                f"{'renders' if not reason else 'download only'}  "
                f"{_name(instance.sop_class_uid)} | {_name(instance.transfer_syntax_uid)}"
                + (f" | {reason}" if reason else "")
            )
        self.stdout.write(f"{shown} of {instances.count()} files shown in the viewer")

    def _study(self, key: str, practice: str | None) -> Study:
        studies = Study.objects.all()
        if practice:
            studies = studies.filter(practice__slug=practice)
        try:
            import uuid

            found = list(studies.filter(code=uuid.UUID(key))[:2])
        except ValueError:
            found = list(studies.filter(study_uid=key)[:2])
        if not found:
            raise CommandError("No such study.")
        if len(found) > 1:
            raise CommandError("More than one practice has this study: choose one with --practice.")
        return found[0]
