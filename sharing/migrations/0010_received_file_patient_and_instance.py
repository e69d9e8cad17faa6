"""What a received file says of itself: its Patient ID, so that a file naming another patient
of the practice is flagged before it is accepted, and its instance UID, so that a copy of a
file the practice holds is charged once, as a new file is."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sharing", "0009_links_that_lost_their_choice"),
    ]

    operations = [
        migrations.AddField(
            model_name="receivedfile",
            name="instance_uid",
            field=models.CharField(
                blank=True, help_text="A DICOM file's SOP Instance UID, kept or not.", max_length=64
            ),
        ),
        migrations.AddField(
            model_name="receivedfile",
            name="patient_id",
            field=models.CharField(
                blank=True, help_text="As the file numbers them.", max_length=64
            ),
        ),
    ]
