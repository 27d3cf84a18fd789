"""What every HTML page of the toolkit shares: one style, escaping, status tags,
label/value blocks and the status filter.

Pages are self-contained: inline CSS, no script, no external URL. The filter
(all / failed / warned / skipped) is CSS only: radio buttons placed before the
``.cards`` container hide the cards of the other outcomes. Every text that came
from a test or a peer goes through ``printable`` and ``html.escape``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from conformance.reports.text import printable

STATUSES = ("PASS", "FAIL", "WARN", "SKIP", "UNTESTED")

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 76em; color: #222;
  padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; padding: .2em .6em; border-bottom: 1px solid #ddd; vertical-align: top; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; white-space: pre-wrap; }
code { background: #f3f3f3; padding: 0 .2em; }
.status { font-weight: bold; padding: 0 .4em; border-radius: 3px; color: #fff; }
.PASS { background: #2e7d32; } .FAIL { background: #c62828; } .WARN { background: #ef6c00; }
.SKIP { background: #607d8b; } .UNTESTED { background: #8e24aa; }
.card { margin: .4em 0; border: 1px solid #ddd; border-left: 5px solid #bbb; border-radius: 4px;
  padding: .3em .6em; }
.card.FAIL { border-left-color: #c62828; background: none; }
.card.WARN { border-left-color: #ef6c00; background: none; }
.card.SKIP { border-left-color: #607d8b; background: none; }
.card.PASS { border-left-color: #2e7d32; background: none; }
summary { cursor: pointer; } .req, .muted { color: #555; font-size: .92em; }
.expected { color: #6a1b9a; font-weight: bold; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .1em 1em; }
dl.facts dt { font-weight: bold; } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.filter { font-weight: bold; } input[name=show] + label { margin-right: 1em; cursor: pointer; }
#show-failed:checked ~ .cards .card:not(.FAIL) { display: none; }
#show-warned:checked ~ .cards .card:not(.WARN) { display: none; }
#show-skipped:checked ~ .cards .card:not(.SKIP) { display: none; }
td.cell { text-align: center; } td.ok { background: #d9f2d9; } td.bad { background: #f8d7d7; }
td.none { background: #f3f3f3; color: #777; }
td.ok a, td.bad a { color: inherit; }
.culprit { color: #b71c1c; font-weight: bold; }
"""

#: the filter's choices: radio id suffix, label, the card class it keeps
FILTERS = (("all", "all", ""), ("failed", "failed", "FAIL"), ("warned", "warned", "WARN"),
           ("skipped", "skipped", "SKIP"))  # fmt: skip


def e(text: object) -> str:
    """Text made printable and HTML-escaped."""
    return html.escape(printable(str(text)), quote=True)


def status_tag(status: str) -> str:
    """A coloured PASS / FAIL / WARN / SKIP / UNTESTED label."""
    known = status if status in STATUSES else "SKIP"
    return f'<span class="status {known}">{e(status)}</span>'


def head(title: str) -> list[str]:
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>{CSS}</style></head><body>",
    ]


def tail() -> list[str]:
    return ["</body></html>"]


def facts(pairs: Iterable[tuple[str, str]], css_id: str = "") -> str:
    """A label/value block (``<dl class="facts">``)."""
    ident = f' id="{e(css_id)}"' if css_id else ""
    rows = "".join(f"<dt>{e(label)}</dt><dd>{e(value)}</dd>" for label, value in pairs)
    return f'<dl class="facts"{ident}>{rows}</dl>'


def filter_bar(
    counts: dict[str, int],
    total: int,
    choices: Sequence[str] = ("all", "failed", "warned", "skipped"),
) -> str:
    """The radio buttons (of ``choices``); they must precede the ``<div class="cards">``."""
    parts: list[str] = []
    for suffix, label, status in FILTERS:
        if suffix not in choices:
            continue
        count = total if not status else counts.get(status, 0)
        checked = " checked" if suffix == "all" else ""
        parts.append(
            f'<input type="radio" name="show" id="show-{suffix}"{checked}>'
            f'<label for="show-{suffix}">{label} ({count})</label>'
        )
    return '<span class="filter">show: </span>' + "".join(parts)


def cards(items: Sequence[str]) -> str:
    return '<div class="cards">\n' + "\n".join(items) + "\n</div>"
