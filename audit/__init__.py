"""Access history. Call audit.record(...) for every touch of patient data."""


def record(*args, **kwargs):
    """Append one access event (see audit.services.record)."""
    from audit.services import record as _record

    return _record(*args, **kwargs)
