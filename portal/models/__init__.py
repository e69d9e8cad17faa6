from portal.models.backup import BackupCode, BackupCodeDevice
from portal.models.compliance import (
    BaaDocument,
    BusinessAssociateAgreement,
    ComplianceSettings,
    RetentionPolicy,
)
from portal.models.dicomnet import (
    Arrival,
    DicomNode,
    DicomPeer,
    Receipt,
    Transfer,
    TransferItem,
)
from portal.models.imaging import Attachment, Instance, Patient, Series, Study
from portal.models.pending import PendingFile
from portal.models.practices import Practice, Role, StaffMember
from portal.models.records_kept import Alert, AlertScan, Disclosure, LegalHold, Purge
from portal.models.sent_forms import SentForm
from portal.models.signin import SignInEvent
from portal.models.storage import StoredObject
from portal.models.uploads import UploadBatch, UploadChunk, UploadSession

__all__ = [
    "Alert",
    "AlertScan",
    "ComplianceSettings",
    "Disclosure",
    "LegalHold",
    "Purge",
    "Receipt",
    "Arrival",
    "Attachment",
    "BackupCode",
    "BackupCodeDevice",
    "BaaDocument",
    "BusinessAssociateAgreement",
    "DicomNode",
    "DicomPeer",
    "Instance",
    "Patient",
    "PendingFile",
    "Practice",
    "RetentionPolicy",
    "Role",
    "Series",
    "SentForm",
    "SignInEvent",
    "StaffMember",
    "StoredObject",
    "Study",
    "Transfer",
    "TransferItem",
    "UploadBatch",
    "UploadChunk",
    "UploadSession",
]
