"""From what a person typed to a request, and from an answer to what is shown.

Shared by the argv commands and the menu shell, so both refuse the same input
(ABP-REQ-13) and show answers the same way (ABP-RESP-5, ABP-RESP-6).
"""

from __future__ import annotations

from protocol import Add, Error, Find, LegacyReply, LocalProtocolError, Ok, Remove, Request
from protocol.codec import check_request, encode_response

#: The argv contract's operations (section 8) and the requests they make.
OPERATIONS = ("add", "rem", "fnd")


class InvalidInput(ValueError):
    """Input that cannot become a request; nothing was sent."""


def make_request(operation: str, name: str, entry: str = "") -> Request:
    """The request for ``operation``; ``InvalidInput`` says why there is none."""
    for what, text in (("name", name), ("entry", entry)):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(f"the {what} is not valid UTF-8: {text!r}") from None
    try:
        request: Request
        if operation == "add":
            request = Add(name, entry)
        elif operation == "rem":
            request = Remove(name)
        elif operation == "fnd":
            request = Find(name)
        else:
            raise InvalidInput(f"unknown operation {operation!r}; use one of {OPERATIONS}")
        check_request(request)
    except LocalProtocolError as exc:
        raise InvalidInput(f"invalid input: {exc}") from None
    return request


def is_error(answer: Ok | Error | LegacyReply) -> bool:
    """ABP-RESP-5: any line starting ``ERROR:`` is an error (legacy ones too)."""
    return isinstance(answer, Error)


def answer_text(request: Request, answer: Ok | Error | LegacyReply) -> str:
    """What a person sees: the entry for ``fnd``, the text after ``OK: ``,
    ``OK`` for a bare OK, the whole ``ERROR: ...`` line, or legacy free text."""
    if isinstance(answer, Error):
        return encode_response(answer).decode("utf-8").removesuffix("\n")
    if isinstance(answer, LegacyReply):
        return answer.text
    if answer.text is not None:
        return answer.text
    return "" if isinstance(request, Find) else "OK"
