"""``--badge``: an SVG badge for a README, in the common two-part style.

``ABP/1 · 147/147`` (tests passed of those judged) on green when every
requirement tested is met; amber when the run passes with SHOULD warnings or
with failures the baseline expects; red with the number of broken MUSTs
(``ABP/1 · 3 MUSTs broken``) when the run fails on a MUST, and red with
``N unexpected`` for a run failed by something else (a SHOULD under
``--strict``, a baseline entry that now passes).
"""

from __future__ import annotations

import html
from pathlib import Path

from conformance.reports.model import FAIL, RunResult

GREEN, AMBER, RED = "#2e7d32", "#c77700", "#c62828"
LABEL = "ABP/1"
_NARROW = set("fijlrtI1.,:;!|() ")
_WIDE = set("mwMW@%")


def text_width(text: str) -> int:
    """Pixels for 11px Verdana, near enough for a badge."""
    return sum(4 if c in _NARROW else 10 if c in _WIDE else 7 for c in text)


def message_and_colour(result: RunResult) -> tuple[str, str]:
    s = result.summary()
    judged = s["passed"] + s["failed"] + s["warned"]
    if result.exit_code() == 0:
        clean = not (s["warned"] or s["expected"])
        return f"{s['passed']}/{judged}", GREEN if clean else AMBER
    musts = [rid for rid in result.broken_musts() if _unexpected_failure(result, rid)]
    if musts:
        return f"{len(musts)} MUST{'s' if len(musts) != 1 else ''} broken", RED
    n = sum(1 for r in result.records if r.counts_against) + len(result.unexpected_passes)
    return f"{n} unexpected", RED


def _unexpected_failure(result: RunResult, rid: str) -> bool:
    """A failure against ``rid`` that the baseline does not expect."""
    return any(r.counts_against and r.outcome_for(rid) == FAIL for r in result.records)


def render(result: RunResult) -> str:
    message, colour = message_and_colour(result)
    left, right = text_width(LABEL) + 12, text_width(message) + 12
    total = left + right
    label, value = html.escape(LABEL), html.escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{label}: {value}">'
        f"<title>{label}: {value}</title>"
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" '
        'font-size="11">'
        f'<text x="{left / 2:g}" y="14">{label}</text>'
        f'<text x="{left + right / 2:g}" y="14">{value}</text>'
        "</g></svg>\n"
    )


def write(result: RunResult, path: str | Path) -> None:
    Path(path).write_text(render(result), encoding="utf-8")
