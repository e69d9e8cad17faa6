"""Reach the real services the integration tests need, or skip (and fail under CI)."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def require(url: str, what: str) -> None:
    """Skip on a laptop without the service; under CI a missing service is a failure."""
    if reachable(url):
        return
    message = f"{what} is not reachable at {url}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message + " (CI runs this test)")
