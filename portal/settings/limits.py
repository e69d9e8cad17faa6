"""Limits enforced before work is done (uploads, DICOM, the receiver) and viewer memory."""

from __future__ import annotations

import ipaddress

from django.core.exceptions import ImproperlyConfigured

from portal import deployment
from portal.settings.core import LOCAL, env, startup_problems

# Upload and ingest limits, enforced before work is done.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 2**20
FILE_UPLOAD_MAX_MEMORY_SIZE = 2**20
# Never spool a multipart file to a plaintext temp file; uploads go through tus, encrypted.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
PORTAL_MAX_FILE_BYTES = env.int("PORTAL_MAX_FILE_BYTES", default=4 * 2**30)
PORTAL_MAX_ARCHIVE_MEMBERS = env.int("PORTAL_MAX_ARCHIVE_MEMBERS", default=20000)
PORTAL_MAX_ARCHIVE_BYTES = env.int("PORTAL_MAX_ARCHIVE_BYTES", default=16 * 2**30)
# One person's staff uploads sent and not yet added to the records (a batch holds what an
# archive may: PORTAL_MAX_ARCHIVE_MEMBERS files, PORTAL_MAX_ARCHIVE_BYTES).
PORTAL_UPLOAD_STAGED_MAX_BYTES = env.int("PORTAL_UPLOAD_STAGED_MAX_BYTES", default=64 * 2**30)
PORTAL_MAX_IMAGE_PIXELS = env.int("PORTAL_MAX_IMAGE_PIXELS", default=100_000_000)
# DICOM: rows x columns x samples of a frame stay under PORTAL_MAX_IMAGE_PIXELS; these bound
# rows x columns x frames x samples of one file and of one series (checked before decoding).
PORTAL_MAX_DICOM_PIXELS = env.int("PORTAL_MAX_DICOM_PIXELS", default=2**30)
PORTAL_MAX_SERIES_PIXELS = env.int("PORTAL_MAX_SERIES_PIXELS", default=2 * 2**30)

# The DICOM receiver (manage.py dicom_receiver): where it listens, how many senders at once.
PORTAL_DICOM_HOST = env.str("PORTAL_DICOM_HOST", default="127.0.0.1")
PORTAL_DICOM_PORT = env.int("PORTAL_DICOM_PORT", default=11112)
PORTAL_DICOM_MAX_ASSOCIATIONS = env.int("PORTAL_DICOM_MAX_ASSOCIATIONS", default=16)
# Receipts (instances acknowledged, not yet filed) older than this belong to no live
# association: the periodic task files them (a live one files its own every minute).
PORTAL_DICOM_RECEIPT_GRACE_SECONDS = env.int("PORTAL_DICOM_RECEIPT_GRACE_SECONDS", default=600)
# Send onward: networks destinations must be in (comma list of CIDRs). Empty: any address but
# loopback, link-local, multicast or reserved ones (portal.dicomnet.destinations).
PORTAL_DICOM_DESTINATION_NETWORKS = [
    n.strip() for n in env.list("PORTAL_DICOM_DESTINATION_NETWORKS", default=[]) if n.strip()
]
for _network in PORTAL_DICOM_DESTINATION_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        _message = f"PORTAL_DICOM_DESTINATION_NETWORKS: {_network!r} is not a network (10.0.0.0/8)"
        if LOCAL:
            raise ImproperlyConfigured(_message) from None
        startup_problems.append(deployment.Problem("portal.E021", _message))
        PORTAL_DICOM_DESTINATION_NETWORKS = ["255.255.255.255/32"]  # the start is refused
# Upload links: most bytes one link takes in (all sends), and one send (encrypted as it arrives).
PORTAL_UPLOAD_LINK_MAX_BYTES = env.int("PORTAL_UPLOAD_LINK_MAX_BYTES", default=4 * 2**30)
PORTAL_UPLOAD_LINK_MAX_REQUEST_BYTES = env.int(
    "PORTAL_UPLOAD_LINK_MAX_REQUEST_BYTES", default=512 * 2**20
)
# ... and most files (ZIP members each count): a few CBCTs, not a flood of tiny files.
PORTAL_UPLOAD_LINK_MAX_FILES = env.int("PORTAL_UPLOAD_LINK_MAX_FILES", default=2000)
# Request bodies must keep arriving (portal.request_bodies): no byte for this long, or less
# than this average rate once the grace period has passed, ends the request with 408.
PORTAL_BODY_STALL_SECONDS = env.int("PORTAL_BODY_STALL_SECONDS", default=60)
PORTAL_BODY_GRACE_SECONDS = env.int("PORTAL_BODY_GRACE_SECONDS", default=60)
PORTAL_BODY_MIN_BYTES_PER_SECOND = env.int("PORTAL_BODY_MIN_BYTES_PER_SECOND", default=1024)
# A body silent this long is "stalled"; one client address may hold this many web threads
# with stalled bodies at once (in each web process), and a further one is answered 408.
PORTAL_BODY_STALLED_AFTER_SECONDS = env.int("PORTAL_BODY_STALLED_AFTER_SECONDS", default=5)
PORTAL_BODY_STALLS_PER_ADDRESS = env.int("PORTAL_BODY_STALLS_PER_ADDRESS", default=1)
# A BAA's signed document, encrypted into the vault as it is uploaded through the admin.
PORTAL_BAA_DOCUMENT_MAX_BYTES = env.int("PORTAL_BAA_DOCUMENT_MAX_BYTES", default=50 * 2**20)

# Viewer: decoded pixels and encoded images are cached in each web process's memory only,
# never on disk. A 450-slice 512x512 CBCT takes 236 MB decoded, twice that once sagittal
# cuts have their transposed copy; budget (pixels + images) x web processes of memory.
PORTAL_VIEWER_CACHE_BYTES = env.int("PORTAL_VIEWER_CACHE_BYTES", default=1024 * 2**20)
PORTAL_VIEWER_IMAGE_CACHE_BYTES = env.int("PORTAL_VIEWER_IMAGE_CACHE_BYTES", default=64 * 2**20)
