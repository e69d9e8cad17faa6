"""Links that may have lost their choice before it was recorded grant nothing, not the study.

Before 0008 an empty choice meant the whole study, so a link issued for chosen photos or
documents became the whole study once retention shredded all of them; its rows cannot tell
it from a link issued for the whole study. The access history can: a link left with no
choice after an attachment of its patient was shredded may be such a link. It is narrowed to
its (now empty) choice: the recipient sees nothing, the staff's list says its chosen items
were deleted, and the front desk can issue a new link. A whole-study link narrowed by
mistake loses access; a chosen-items link left whole would disclose a study nobody shared.
"""

from django.db import migrations


def _narrow_links_that_lost_their_choice(apps, schema_editor) -> None:  # noqa: ANN001
    ShareLink = apps.get_model("sharing", "ShareLink")
    AccessEvent = apps.get_model("audit", "AccessEvent")
    # A de-identified copy's link never had chosen attachments: its copy is what was chosen.
    unchosen = ShareLink.objects.filter(
        whole_study=True,
        series__isnull=True,
        attachments__isnull=True,
        source_study__isnull=True,
    ).values_list("pk", "patient_id", "created_at")
    narrowed = [
        pk
        for pk, patient_id, issued in unchosen.iterator()
        if AccessEvent.objects.filter(
            action="shred",
            object_type="attachment",
            patient_id=patient_id,
            created_at__gte=issued,
        ).exists()
    ]
    ShareLink.objects.filter(pk__in=narrowed).update(whole_study=False)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0009_legal_hold_and_purge_actions"),
        ("sharing", "0008_share_whole_study"),
    ]

    operations = [
        migrations.RunPython(_narrow_links_that_lost_their_choice, migrations.RunPython.noop),
    ]
