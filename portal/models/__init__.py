from portal.models.backup import BackupCode, BackupCodeDevice
from portal.models.compliance import BusinessAssociateAgreement, RetentionPolicy
from portal.models.imaging import Attachment, Instance, Patient, Series, Study
from portal.models.practices import Practice, Role, StaffMember
from portal.models.storage import StoredObject
from portal.models.uploads import UploadBatch, UploadChunk, UploadSession

__all__ = [
    "Attachment",
    "BackupCode",
    "BackupCodeDevice",
    "BusinessAssociateAgreement",
    "Instance",
    "Patient",
    "Practice",
    "RetentionPolicy",
    "Role",
    "Series",
    "StaffMember",
    "StoredObject",
    "Study",
    "UploadBatch",
    "UploadChunk",
    "UploadSession",
]
