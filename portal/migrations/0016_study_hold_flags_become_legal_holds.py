"""A study's hold flag becomes a recorded legal hold, released like any other.

The back office no longer edits the flag (holds are set and released under Legal holds, where
who and why is kept), so a study flagged before would have stayed held with no way to
release it.
"""

from django.db import migrations


def flags_to_holds(apps, schema_editor):
    Study = apps.get_model("portal", "Study")
    LegalHold = apps.get_model("portal", "LegalHold")
    for study in Study.objects.filter(legal_hold=True):
        LegalHold.objects.create(
            practice_id=study.practice_id,
            patient_id=study.patient_id,
            study=study,
            study_code=study.code,
            reason="Held by the study's flag before holds were recorded",
        )
    Study.objects.filter(legal_hold=True).update(legal_hold=False)


class Migration(migrations.Migration):
    dependencies = [("portal", "0015_legal_hold_study_code_retention_floor")]

    operations = [migrations.RunPython(flags_to_holds, migrations.RunPython.noop)]
