"""Upload links: a patient or another practice sends images in for one patient.

The same rules as a share link: a 256-bit token stored as its SHA-256 and shown once, an
expiry, a password and the patient's birth date to verify, throttled per address and locked
per link, a GET that consumes nothing. Files pass the ingest checks and are sealed in the
vault on arrival, but become part of the patient's record only when staff accept them.
"""
