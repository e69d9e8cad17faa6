"""What the people journeys share: the screen sizes, and screenshots for docs/screenshots/.

Their `phone` and `desktop` pages are fixtures of tests/e2e/conftest.py."""

from __future__ import annotations

from pathlib import Path

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


def shot(page, name: str) -> None:
    """Save the page's screenshot, as it is on the screen, to docs/screenshots/<name>.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
