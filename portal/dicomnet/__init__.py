"""The practice's DICOM network: the receiver (C-STORE in) and send onward (C-STORE out)."""
