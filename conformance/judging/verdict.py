"""Verdicts that speak the spec: a failure quotes the requirement and shows the
expected and the actual bytes. The transcript that led there is the test's
own; the plugin attaches it to every failed test (``conformance.plugin``)."""

from __future__ import annotations

from typing import NoReturn

from protocol import requirements
from protocol.escape import escape


def _show(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return f'"{escape(bytes(value))}"'
    return repr(value)


class RequirementFailed(AssertionError):
    """A requirement of docs/spec.md was broken by the implementation under test."""

    def __init__(
        self, requirement_id: str, summary: str, *, expected: object = None, actual: object = None
    ) -> None:
        self.requirement_id = requirement_id
        self.summary = summary
        self.expected = expected
        self.actual = actual
        super().__init__(self.render())

    def render(self) -> str:
        """The failure for people: summary, requirement quoted, expected and actual."""
        try:
            req = requirements.get(self.requirement_id)
            quote = f"{req.id} ({req.level}): {req.text}"
        except KeyError:
            quote = self.requirement_id
        lines = [f"{self.summary}", f"  requirement: {quote}"]
        if self.expected is not None or self.actual is not None:
            lines.append(f"  expected: {_show(self.expected)}")
            lines.append(f"  actual:   {_show(self.actual)}")
        return "\n".join(lines)


def fail(
    requirement_id: str, summary: str, *, expected: object = None, actual: object = None
) -> NoReturn:
    raise RequirementFailed(requirement_id, summary, expected=expected, actual=actual)
