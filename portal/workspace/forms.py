"""Forms of the staff workspace."""

from __future__ import annotations

from datetime import date

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from portal.models import Practice, Role
from portal.models.practices import common_time_zone_names
from portal.textchecks import refuse_control_characters
from portal.workspace import once

NAME = [refuse_control_characters]

MODALITIES = [
    ("", "Any"),
    ("CT", "CT / CBCT"),
    ("PX", "Panoramic (PX)"),
    ("IO", "Intraoral (IO)"),
    ("DX", "Radiograph (DX)"),
    ("CR", "Radiograph (CR)"),
    ("OT", "Other (OT)"),
]


class SignInForm(AuthenticationForm):
    """Django's sign-in form; a username with control characters is refused with a reason."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].validators.append(refuse_control_characters)


class TokenForm(forms.Form):
    token = forms.CharField(
        label="Code from your authenticator app (or a backup code)",
        max_length=48,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True}),
    )

    def clean_token(self) -> str:
        return self.cleaned_data["token"].replace(" ", "").strip()


class SearchForm(forms.Form):
    q = forms.CharField(label="Name or patient ID", required=False, max_length=100, validators=NAME)
    birth_date = forms.DateField(
        label="Date of birth", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_from = forms.DateField(
        label="Study from", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label="Study to", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    modality = forms.ChoiceField(choices=MODALITIES, required=False)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise ValidationError("The study date range ends before it starts.")
        return data

    def used_fields(self) -> list[str]:
        """Return which fields were filled in, never their values (they may be PHI)."""
        return sorted(k for k, v in self.cleaned_data.items() if v)


NO_BIRTH_DATE = (
    "A patient link asks for the date of birth, and none is on file for this patient: "
    "add it on the patient's page, or issue a referrer link."
)


DEID_NOT_FOR_PATIENT = (
    "A de-identified copy is for a clinician or a teacher: choose 'Referring clinician'. "
    "They sign in with the password and a code sent to their email."
)


class ShareForm(forms.Form):
    recipient_kind = forms.ChoiceField(
        label="Recipient",
        choices=[("patient", "Patient"), ("referrer", "Referring clinician")],
        widget=forms.RadioSelect,
        initial="patient",
    )
    recipient_email = forms.EmailField(label="Recipient email", required=False)
    recipient_name = forms.CharField(
        label="Recipient name", required=False, max_length=200, validators=NAME
    )
    series = forms.MultipleChoiceField(
        label="Series (none chosen means the whole study)",
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    attachments = forms.MultipleChoiceField(
        label="Photos and reports", required=False, widget=forms.CheckboxSelectMultiple
    )
    expires_in_days = forms.IntegerField(label="Expires after (days)", min_value=1)
    password = forms.CharField(
        label="Password (leave empty to generate one that is easy to read aloud)",
        required=False,
        min_length=8,
        max_length=128,
        validators=NAME,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    allow_download = forms.BooleanField(label="Allow download", required=False, initial=True)
    max_downloads = forms.IntegerField(
        label="Download limit (optional)", required=False, min_value=1, max_value=1000
    )
    deidentified = forms.BooleanField(
        label="De-identified copy (for teaching or a second opinion)",
        required=False,
        help_text="The recipient gets a copy of the DICOM images with the patient's name, "
        "ID, birth date, accession number, institution and UIDs removed or replaced "
        "(DICOM PS3.15 Annex E); the originals are not changed.",
    )
    send_email = forms.BooleanField(
        label="Email the link to the recipient now (the password is never emailed)",
        required=False,
    )
    notify_recipient = forms.BooleanField(
        label="Also email the recipient when the link is first opened and first downloaded",
        required=False,
    )
    # One per form shown: the same form posted again (a reload of the page that showed the
    # link, a double click) issues nothing more (portal.workspace.views.studies.issue_share).
    issue_key = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args, study, series, attachments, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["issue_key"].initial = once.new_key()
        self.practice = study.practice
        self.patient = study.patient
        self.fields["series"].choices = [(str(s.code), str(s)) for s in series]
        self.fields["attachments"].choices = [
            (str(a.code), f"{a}{'' if a.study_id else ' (not filed under a study)'}")
            for a in attachments
        ]
        if self.patient.email:
            # The email on file is the patient's: filled in for a patient link only.
            self.fields["recipient_email"].widget.attrs["data-patient-email"] = self.patient.email
            if self.initial.get("recipient_kind", "patient") == "patient":
                self.initial.setdefault("recipient_email", self.patient.email)
        if not series:
            del self.fields["deidentified"]  # photos and reports only: nothing to de-identify
        self.fields["expires_in_days"].initial = self.practice.share_default_days
        self.fields["expires_in_days"].max_value = self.practice.share_max_days
        self.fields["expires_in_days"].widget.attrs["max"] = self.practice.share_max_days

    def clean_expires_in_days(self) -> int:
        days = self.cleaned_data["expires_in_days"]
        if days > self.practice.share_max_days:
            raise ValidationError(
                f"This practice allows links of at most {self.practice.share_max_days} days."
            )
        return days

    def clean(self) -> dict:
        data = super().clean()
        if data.get("recipient_kind") == "referrer" and not data.get("recipient_email"):
            self.add_error("recipient_email", "A referrer link needs the referrer's email.")
        if data.get("recipient_kind") == "patient" and self.patient.birth_date is None:
            self.add_error("recipient_kind", NO_BIRTH_DATE)
        if data.get("deidentified"):
            if data.get("recipient_kind") == "patient":
                self.add_error("deidentified", DEID_NOT_FOR_PATIENT)
            if data.get("attachments"):
                self.add_error("deidentified", "A de-identified copy holds DICOM images only.")
        if data.get("send_email") and not data.get("recipient_email"):
            self.add_error("recipient_email", "Give an email address to send the link to.")
        if data.get("notify_recipient") and not data.get("recipient_email"):
            self.add_error("recipient_email", "Give the recipient's email to tell them of its use.")
        return data


class PracticeSettingsForm(forms.ModelForm):
    class Meta:
        model = Practice
        fields = [
            "share_default_days",
            "share_max_days",
            "idle_timeout_minutes",
            "front_desk_views_images",
            "hygienists_see_assigned_only",
            "time_zone",
            "date_order",
            "notify_link_activity",
            "deid_clean_pixels",
            "deid_dates",
        ]
        labels = {
            "share_default_days": "A new link lasts (days)",
            "share_max_days": "Longest a link may last (days)",
            "idle_timeout_minutes": "Sign staff out after (minutes idle)",
            "front_desk_views_images": "Front desk may open images",
            "hygienists_see_assigned_only": "Hygienists see only their patients",
            "time_zone": "Time zone",
            "date_order": "Order of a birth date",
            "notify_link_activity": "Email about link use",
            "deid_clean_pixels": "De-identified copies: leave out images with burned-in text",
            "deid_dates": "De-identified copies: dates",
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # One name per region; a practice already on an old alias keeps it offered.
        names = set(common_time_zone_names()) | {self.instance.time_zone}
        self.fields["time_zone"].widget = forms.Select(
            choices=[(name, name) for name in sorted(names) if name]
        )

    # Limits on link lifetimes and the idle sign-out: Practice.clean.


class PatientRecordForm(forms.Form):
    """What staff may correct on a patient's record: the birth date a patient link asks for,
    and (practice admins) which hygienists the patient is assigned to.

    Any member may fill in a missing birth date; only a practice admin may change one on
    file (patient links already issued ask for it), and nobody may remove it.
    """

    birth_date = forms.DateField(
        label="Date of birth", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    assigned_staff = forms.MultipleChoiceField(
        label="Assigned hygienists", required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, hygienists, can_assign: bool, birth_date_on_file, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.birth_date_on_file = birth_date_on_file
        self.can_change_birth_date = can_assign or birth_date_on_file is None
        if not self.can_change_birth_date:
            self.fields["birth_date"].disabled = True
        if can_assign:
            self.fields["assigned_staff"].choices = [
                (str(u.pk), u.get_full_name() or u.get_username()) for u in hygienists
            ]
        else:
            del self.fields["assigned_staff"]

    def clean_birth_date(self):
        born = self.cleaned_data["birth_date"]
        if born is None and self.birth_date_on_file is not None:
            raise ValidationError("A date of birth on file cannot be removed; correct it.")
        if born is not None and not date(1900, 1, 1) <= born <= date.today():
            raise ValidationError("Give a date of birth between 1900 and today.")
        return born


class NewStaffForm(forms.Form):
    """A new member of the practice. Usernames start with the practice's own prefix, so
    whether a name is taken is only ever asked of, and answered for, this practice."""

    username = forms.RegexField(
        label="Username",
        regex=r"^[A-Za-z0-9_-][A-Za-z0-9._-]{1,38}[A-Za-z0-9_-]$",
        error_messages={"invalid": "3 to 40 letters, digits, dots, dashes or underscores."},
    )
    full_name = forms.CharField(label="Full name", max_length=150, validators=NAME)
    email = forms.EmailField(label="Email")
    role = forms.ChoiceField(choices=Role.choices)

    def __init__(self, *args, practice: Practice, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.prefix_text = f"{practice.slug}."
        self.fields[
            "username"
        ].help_text = (
            f"They sign in as {self.prefix_text}<username>, e.g. {self.prefix_text}jsmith."
        )

    def clean_username(self) -> str:
        username = self.prefix_text + self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise ValidationError(f"{username} is taken in your practice; choose another.")
        return username


class StaffRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
