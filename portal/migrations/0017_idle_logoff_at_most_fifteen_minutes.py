"""Idle sign-out is at most 15 minutes (the security rules); longer stored settings are cut."""

from django.db import migrations, models


def cut_longer_idle_settings(apps, schema_editor) -> None:
    Practice = apps.get_model("portal", "Practice")
    Practice.objects.filter(idle_timeout_minutes__gt=15).update(idle_timeout_minutes=15)


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0016_study_hold_flags_become_legal_holds"),
    ]

    operations = [
        migrations.AlterField(
            model_name="practice",
            name="idle_timeout_minutes",
            field=models.PositiveSmallIntegerField(
                default=15,
                help_text="Staff are signed out after this much inactivity (at most 15 minutes).",
            ),
        ),
        migrations.RunPython(cut_longer_idle_settings, migrations.RunPython.noop),
    ]
