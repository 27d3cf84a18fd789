"""The requirement catalogue, read from the normative text ``docs/spec.md``.

The spec is the single source: a requirement is a line
``**ABP-SECTION-N** (LEVEL, ROLE): text``. Wheels carry the file as
``protocol/spec.md``; a source checkout reads ``docs/spec.md`` directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_LINE = re.compile(
    r"^\*\*(?P<id>ABP-(?P<section>[A-Z]+)-(?P<n>\d+))\*\* "
    r"\((?P<level>MUST|SHOULD|MAY), (?P<role>server|client|counter|program)\): (?P<text>.+)$"
)
_HEADING = re.compile(r"^## (?P<number>\d+)\. (?P<title>.+)$")

LEVELS = ("MUST", "SHOULD", "MAY")
ROLES = ("server", "client", "counter", "program")


@dataclass(frozen=True, slots=True)
class Requirement:
    id: str
    level: str  # MUST, SHOULD or MAY
    role: str  # server, client, counter or program
    section: str  # e.g. "2. Encoding and framing"
    text: str

    @property
    def number(self) -> tuple[str, int]:
        """Sort key: section tag then number."""
        _, tag, n = self.id.split("-")
        return (tag, int(n))


def spec_path() -> Path:
    """Where the spec is: inside the installed package, or in the checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "spec.md", here.parent / "docs" / "spec.md"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("docs/spec.md not found beside the protocol package")


def parse(text: str) -> dict[str, Requirement]:
    """Every requirement of a spec text, in document order, by ID."""
    found: dict[str, Requirement] = {}
    section = ""
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            section = f"{heading['number']}. {heading['title']}"
            continue
        match = _LINE.match(line)
        if match:
            if match["id"] in found:
                raise ValueError(f"duplicate requirement {match['id']}")
            found[match["id"]] = Requirement(
                match["id"], match["level"], match["role"], section, match["text"]
            )
    return found


@cache
def catalogue() -> dict[str, Requirement]:
    """The requirements of ABP/1, by ID, in spec order."""
    return parse(spec_path().read_text(encoding="utf-8"))


def get(requirement_id: str) -> Requirement:
    try:
        return catalogue()[requirement_id]
    except KeyError:
        raise KeyError(f"no requirement {requirement_id} in docs/spec.md") from None
