"""``protocol.requirements``: the catalogue read from docs/spec.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protocol import requirements
from protocol.requirements import LEVELS, ROLES, Requirement, catalogue, get, parse

SPEC = Path(__file__).resolve().parent.parent / "docs" / "spec.md"
ID = re.compile(r"^ABP-[A-Z]+-[1-9]\d*$")

#: The numbered sections of the spec and the ID tag each one uses.
SECTIONS = {
    "1. Transport": "TRANSPORT",
    "2. Encoding and framing": "FRAME",
    "3. Requests": "REQ",
    "4. Responses": "RESP",
    "5. Connections": "CONN",
    "6. Durability and consistency": "DUR",
    "7. The counter service": "COUNTER",
    "8. How a client under test is driven": "CLIENT",
    "9. ABP over TLS": "TLS",
}


def test_catalogue_reads_the_spec_of_this_checkout() -> None:
    assert requirements.spec_path().resolve() in {
        SPEC.resolve(),
        (Path(requirements.__file__).parent / "spec.md").resolve(),
    }
    assert len(catalogue()) >= 50


def test_every_requirement_line_of_the_spec_is_in_the_catalogue() -> None:
    """A typo in a requirement line must not make it silently vanish."""
    text = SPEC.read_text(encoding="utf-8")
    ids = re.findall(r"^\*\*(ABP-[A-Z]+-\w+)\*\*", text, flags=re.MULTILINE)
    assert ids
    assert sorted(ids) == sorted(catalogue())


def test_ids_are_well_formed_unique_and_numbered_in_order() -> None:
    by_tag: dict[str, list[int]] = {}
    for rid, req in catalogue().items():
        assert ID.match(rid), rid
        assert req.id == rid
        tag, number = req.number
        by_tag.setdefault(tag, []).append(number)
    for tag, numbers in by_tag.items():
        assert numbers == list(range(1, len(numbers) + 1)), tag


def test_levels_roles_and_text() -> None:
    for req in catalogue().values():
        assert req.level in LEVELS
        assert req.role in ROLES
        assert req.text.strip() == req.text
        assert req.text


def test_every_section_has_requirements_with_its_tag() -> None:
    seen: dict[str, set[str]] = {}
    for req in catalogue().values():
        seen.setdefault(req.section, set()).add(req.number[0])
    assert seen == {section: {tag} for section, tag in SECTIONS.items()}


def test_some_known_requirements() -> None:
    frame10 = get("ABP-FRAME-10")
    assert (frame10.level, frame10.role) == ("MUST", "server")
    assert "ERROR: Request too long" in frame10.text
    assert get("ABP-FRAME-8").level == "SHOULD"
    assert get("ABP-CONN-8").level == "MAY"
    assert get("ABP-COUNTER-1").role == "counter"
    assert get("ABP-TRANSPORT-3").role == "program"


@pytest.mark.parametrize("rid", ["ABP-FRAME-999", "ABP-NOPE-1", "", "abp-frame-1"])
def test_get_unknown(rid: str) -> None:
    with pytest.raises(KeyError, match="no requirement"):
        get(rid)


SYNTHETIC = """\
# A spec

**ABP-X-1** (MUST, server): before any heading.

## 1. First

Prose. **ABP-X-9** (MUST, server): not at the start of a line.
    **ABP-X-8** (MUST, server): indented, an example.
**ABP-ONE-1** (MUST, server): A server MUST do one thing.
**ABP-ONE-2** (SHOULD, client): A client SHOULD do another: with a colon.
**ABP-ONE-3** (MUST, nobody): an unknown role is not a requirement.
**ABP-ONE-4** (MUST NOT, server): nor is an unknown level.

## 2. Second

**ABP-TWO-1** (MAY, program): Programs MAY.
"""


def test_parse_synthetic_text() -> None:
    found = parse(SYNTHETIC)
    assert list(found) == ["ABP-X-1", "ABP-ONE-1", "ABP-ONE-2", "ABP-TWO-1"]
    assert found["ABP-X-1"].section == ""
    assert found["ABP-ONE-2"] == Requirement(
        "ABP-ONE-2", "SHOULD", "client", "1. First", "A client SHOULD do another: with a colon."
    )
    assert found["ABP-TWO-1"].section == "2. Second"
    assert found["ABP-TWO-1"].number == ("TWO", 1)


def test_parse_refuses_a_duplicate_id() -> None:
    text = "**ABP-A-1** (MUST, server): one.\n**ABP-A-1** (MAY, client): two.\n"
    with pytest.raises(ValueError, match="duplicate requirement ABP-A-1"):
        parse(text)


def test_parse_empty_text() -> None:
    assert parse("") == {}
