"""Assertions that speak the spec: a failure quotes the requirement, shows the
expected and the actual bytes, and the wire transcript that led there."""

from __future__ import annotations

from typing import NoReturn

from conformance.harness.wire import Transcript
from protocol import requirements
from protocol.escape import escape


def _show(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return f'"{escape(bytes(value))}"'
    return repr(value)


class RequirementFailed(AssertionError):
    """A requirement of docs/spec.md was broken by the implementation under test."""

    def __init__(
        self,
        requirement_id: str,
        summary: str,
        *,
        expected: object = None,
        actual: object = None,
        transcript: Transcript | None = None,
    ) -> None:
        self.requirement_id = requirement_id
        self.summary = summary
        self.expected = expected
        self.actual = actual
        self.transcript = transcript
        super().__init__(self.render())

    def render(self, *, transcript: bool = True) -> str:
        """The failure for people; ``transcript=False`` leaves the transcript out
        (the reports show the test's whole transcript on their own)."""
        try:
            req = requirements.get(self.requirement_id)
            quote = f"{req.id} ({req.level}): {req.text}"
        except KeyError:
            quote = self.requirement_id
        lines = [f"{self.summary}", f"  requirement: {quote}"]
        if self.expected is not None or self.actual is not None:
            lines.append(f"  expected: {_show(self.expected)}")
            lines.append(f"  actual:   {_show(self.actual)}")
        if transcript and self.transcript is not None and self.transcript.records:
            lines.append("  transcript:")
            lines.extend("    " + line for line in self.transcript.render().splitlines())
        return "\n".join(lines)


def fail(
    requirement_id: str,
    summary: str,
    *,
    expected: object = None,
    actual: object = None,
    transcript: Transcript | None = None,
) -> NoReturn:
    raise RequirementFailed(
        requirement_id, summary, expected=expected, actual=actual, transcript=transcript
    )


def expect_equal(
    requirement_id: str,
    summary: str,
    expected: object,
    actual: object,
    transcript: Transcript | None = None,
) -> None:
    if expected != actual:
        fail(requirement_id, summary, expected=expected, actual=actual, transcript=transcript)
