"""A link is the whole study, or only its chosen items, as decided when it was issued.

An empty choice used to mean the whole study, so a link to one report became the whole study
once retention shredded that report. Links issued before this migration with a choice keep
it; one whose chosen items were all deleted already cannot be told from a whole-study link.
"""

from django.db import migrations, models


def _chosen_links_are_not_whole(apps, schema_editor) -> None:  # noqa: ANN001
    ShareLink = apps.get_model("sharing", "ShareLink")
    chosen = ShareLink.objects.filter(
        models.Q(series__isnull=False) | models.Q(attachments__isnull=False)
    )
    ShareLink.objects.filter(pk__in=chosen.values("pk")).update(whole_study=False)


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0019_sent_forms"),
        ("sharing", "0007_deidentified_share"),
    ]

    operations = [
        migrations.AddField(
            model_name="sharelink",
            name="whole_study",
            field=models.BooleanField(
                default=True,
                help_text="The whole study; otherwise only the chosen series and files.",
            ),
        ),
        migrations.AlterField(
            model_name="sharelink",
            name="series",
            field=models.ManyToManyField(
                blank=True,
                help_text="Chosen series (whole_study says whether the link is the whole study).",
                related_name="+",
                to="portal.series",
            ),
        ),
        migrations.RunPython(_chosen_links_are_not_whole, migrations.RunPython.noop),
    ]
