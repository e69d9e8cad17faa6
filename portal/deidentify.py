"""De-identified copies: DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile.

Pure module (pydicom); no Django. Works on a copy of a dataset read from the vault; the
stored original is never touched. Options (per practice): Clean Pixel Data (files that
declare burned-in annotation are left out, as the portal cannot find the text to clean),
and dates removed (basic), shifted by a per-export offset (Modified Dates) or kept (Full
Dates). All private elements go; every UID is replaced consistently within one export.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

REMOVE_DATES, SHIFT_DATES, KEEP_DATES = "remove", "shift", "keep"

# Table E.1-1 attributes with action X (remove) or X/Z/D reduced to X where the IOD allows.
_REMOVE = (
    "AccessionNumber AdditionalPatientHistory AdmittingDiagnosesDescription AdmissionID "
    "Allergies BranchOfService ConsultingPhysicianName ContentCreatorName CountryOfResidence "
    "CurrentPatientLocation DerivationDescription DeviceSerialNumber EthnicGroup "
    "ImageComments InstitutionAddress InstitutionName InstitutionalDepartmentName "
    "IssuerOfPatientID MedicalAlerts MedicalRecordLocator MilitaryRank "
    "NameOfPhysiciansReadingStudy "
    "Occupation OperatorsName OtherPatientIDs OtherPatientIDsSequence OtherPatientNames "
    "PatientAddress PatientAge PatientBirthName PatientBirthTime PatientComments "
    "PatientInsurancePlanCodeSequence PatientMotherBirthName PatientReligiousPreference "
    "PatientSize PatientState PatientTelephoneNumbers PatientWeight PerformedProcedureStepID "
    "PerformedProcedureStepDescription PerformingPhysicianName PhysiciansOfRecord "
    "PregnancyStatus ReferringPhysicianAddress ReferringPhysicianTelephoneNumbers "
    "RequestAttributesSequence RequestingPhysician ScheduledProcedureStepID "
    "SeriesDescription StationName StudyDescription StudyComments "
    "InterpretationText ReasonForStudy RequestedProcedureDescription ProtocolName "
    "AcquisitionComments AcquisitionDeviceProcessingDescription TextString "
    "ReferencedPatientSequence ReferencedStudySequence ReferencedPerformedProcedureStepSequence "
    "OriginalAttributesSequence PersonName VerifyingObserverName ResponsiblePerson "
    "ResponsibleOrganization CustodialOrganizationSequence"
).split()
# Type 1 or 2 attributes that must stay, emptied (Z) or given a dummy value (D).
_DUMMY = {"PatientName": "ANONYMOUS", "PatientID": ""}  # PatientID: a pseudonym, set below
_ZERO = (
    "ReferringPhysicianName StudyID PatientSex PatientBirthDate AccessionNumber "
    "Manufacturer ContentCreatorName"
).split()
# UIDs that name a kind of thing, not an instance: never replaced.
_KEEP_UIDS = {
    "SOPClassUID", "MediaStorageSOPClassUID", "TransferSyntaxUID", "ReferencedSOPClassUID",
    "ImplementationClassUID", "CodingSchemeUID", "PrivateInformationCreatorUID",
    "ReferencedTransferSyntaxUIDInFile", "ContextUID", "MappingResourceUID",
}  # fmt: skip
_DATE_VRS = {"DA", "DT"}
_TIME_VRS = {"TM"}


@dataclass
class Options:
    """What a practice chose: the Clean Pixel Data option and the dates option."""

    clean_pixels: bool = True
    dates: str = REMOVE_DATES


@dataclass
class Export:
    """State shared by the files of one de-identified export: UID map, pseudonym, offset."""

    options: Options
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    offset_days: int = field(default_factory=lambda: -secrets.randbelow(3650) - 1)

    def uid(self, value: str) -> str:
        """Return the replacement of a UID, the same for the same UID within the export."""
        digest = hmac.new(self.secret, value.encode(), hashlib.sha256).digest()[:16]
        return f"2.25.{int.from_bytes(digest, 'big')}"

    def pseudonym(self, patient_id: str) -> str:
        digest = hmac.new(self.secret, b"patient:" + patient_id.encode(), hashlib.sha256)
        return "ANON-" + digest.hexdigest()[:10].upper()


class LeftOut(Exception):
    """The file cannot be de-identified under the chosen options; the message says why."""


def has_burned_in_annotation(ds: Dataset) -> bool:
    """Tell whether the file says its pixels carry burned-in text (0028,0301 YES)."""
    return str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES"


def deidentify(ds: Dataset, export: Export) -> Dataset:
    """De-identify ds in place (a copy read for the export) and return it."""
    if export.options.clean_pixels and has_burned_in_annotation(ds):
        raise LeftOut("burned-in annotation in the pixels (Clean Pixel Data option)")
    patient_id = str(ds.get("PatientID", ""))
    ds.remove_private_tags()
    _walk(ds, export)
    ds.PatientName = _DUMMY["PatientName"]
    ds.PatientID = export.pseudonym(patient_id)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = _method(export.options)
    ds.DeidentificationMethodCodeSequence = Sequence(
        [_code(value, meaning) for value, meaning in _codes(export.options)]
    )
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta:
        meta.MediaStorageSOPInstanceUID = export.uid(str(meta.MediaStorageSOPInstanceUID))
    return ds


def _walk(ds: Dataset, export: Export) -> None:
    for elem in list(ds):
        keyword = elem.keyword
        if elem.tag.group in range(0x6000, 0x6020, 2) and elem.tag.element in (0x3000, 0x4000):
            del ds[elem.tag]  # overlay data and comments: X in Table E.1-1
            continue
        if keyword in _REMOVE and keyword not in _ZERO:
            del ds[elem.tag]
            continue
        if keyword in _ZERO:
            elem.value = ""
            continue
        if elem.VR == "SQ":
            for item in elem.value:
                _walk(item, export)
            continue
        if elem.VR == "UI" and keyword not in _KEEP_UIDS and elem.value:
            if isinstance(elem.value, str):
                elem.value = export.uid(elem.value)
            else:
                elem.value = [export.uid(str(v)) for v in elem.value]
            continue
        if elem.VR == "PN" and keyword != "PatientName":
            elem.value = ""
            continue
        if elem.VR in _DATE_VRS | _TIME_VRS:
            _date(ds, elem, export)


def _date(ds: Dataset, elem, export: Export) -> None:  # noqa: ANN001
    if export.options.dates == KEEP_DATES:
        return
    if export.options.dates == SHIFT_DATES and elem.VR == "DA" and isinstance(elem.value, str):
        try:
            day = datetime.datetime.strptime(elem.value[:8], "%Y%m%d").date()
        except ValueError:
            elem.value = ""
            return
        elem.value = (day + datetime.timedelta(days=export.offset_days)).strftime("%Y%m%d")
        return
    if export.options.dates == SHIFT_DATES and elem.VR == "TM":
        return  # times of day carry no date; kept with Modified Dates
    elem.value = ""


def method_text(options: Options) -> str:
    """Return the profile and options, as De-identification Method (0012,0063) says them."""
    return _method(options)


def _method(options: Options) -> str:
    parts = ["DICOM PS3.15 E.1 Basic Application Level Confidentiality Profile"]
    if options.clean_pixels:
        parts.append("Clean Pixel Data")
    parts.append({SHIFT_DATES: "Modified Dates", KEEP_DATES: "Full Dates"}.get(options.dates, ""))
    return "; ".join(p for p in parts if p)[:64]


def _codes(options: Options) -> list[tuple[str, str]]:
    codes = [("113100", "Basic Application Confidentiality Profile")]
    if options.clean_pixels:
        codes.append(("113101", "Clean Pixel Data Option"))
    if options.dates == KEEP_DATES:
        codes.append(("113106", "Retain Longitudinal Temporal Information Full Dates Option"))
    elif options.dates == SHIFT_DATES:
        codes.append(("113107", "Retain Longitudinal Temporal Information Modified Dates Option"))
    return codes


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
    return item
