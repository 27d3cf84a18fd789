"""Verdicts that speak the spec: a failure quotes the requirement and shows the
expected and the actual bytes. The transcript that led there is the test's
own; the plugin attaches it to every failed test (``conformance.plugin``)."""

from __future__ import annotations

from typing import NoReturn

from conformance.harness.wire import SHOWN_BYTES, WireClosed, WireError, WireTimeout, shown
from protocol import requirements
from protocol.escape import escape


def _show(value: object) -> str:
    """A value as a failure shows it: bytes escaped, and anything long cut as
    transcripts cut it (the first ``SHOWN_BYTES``, and how long it was)."""
    if isinstance(value, bytes | bytearray):
        part, cut = shown(bytes(value))
        return f'"{escape(part)}"' + (f"  ({cut})" if cut else "")
    text = repr(value)
    if len(text) > SHOWN_BYTES:
        return f"{text[:SHOWN_BYTES]}...  ({len(text)} characters, first {SHOWN_BYTES} shown)"
    return text


def on_the_wire(exc: WireError, timeout: float | None = None) -> str:
    """What a failed send or read means on the wire, for a failure's summary
    (never the exception's own text: "Broken pipe" is how the OS says it)."""
    if isinstance(exc, WireTimeout):
        return "no answer" + (f" within {timeout:g}s" if timeout is not None else " in time")
    if isinstance(exc, WireClosed):
        if exc.sending:
            return "the server had closed the connection: the request could not be sent"
        if exc.reset:
            return "the server reset the connection instead of answering"
        return "the server closed the connection instead of answering"
    return str(exc)


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
