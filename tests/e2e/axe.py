"""Accessibility checks in the journeys: axe-core, vendored under static/, run on each page.

The script is added from the portal's own origin, so the page's Content-Security-Policy
(scripts from 'self' only) stays on while it runs.
"""

from __future__ import annotations

AXE_URL = "/static/vendor/axe-core/axe.min.js"
BLOCKING = ("serious", "critical")


def check(page, name: str) -> None:
    """Fail when axe-core finds a serious or critical violation on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=AXE_URL)
        page.wait_for_function("() => typeof window.axe !== 'undefined'")
    result = page.evaluate(
        """() => axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))})))"""
    )
    blocking = [v for v in result if v["impact"] in BLOCKING]
    assert not blocking, f"axe on {name}: {blocking}"
