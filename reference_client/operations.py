"""From what a person typed to a request, and from an answer to what is shown.

Shared by the argv commands and the menu shell, so both refuse the same input
(ABP-REQ-13) and show answers the same way (ABP-RESP-5, ABP-RESP-6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocol import (
    Add,
    CounterReply,
    Error,
    Find,
    LegacyReply,
    LocalProtocolError,
    Remove,
    Request,
    Response,
)
from protocol.codec import check_request, encode_request, encode_response
from protocol.escape import escape

if TYPE_CHECKING:
    from reference_client.link import Exchange

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


def is_error(answer: Response) -> bool:
    """ABP-RESP-5: any line starting ``ERROR:`` is an error (legacy ones too)."""
    return isinstance(answer, Error)


def answer_text(request: Request, answer: Response) -> str:
    """What a person sees: the entry for ``fnd``, the text after ``OK: ``,
    ``OK`` for a bare OK, the whole ``ERROR: ...`` line, or legacy free text."""
    if isinstance(answer, Error):
        return encode_response(answer).decode("utf-8").removesuffix("\n")
    if isinstance(answer, LegacyReply):
        return answer.text
    if isinstance(answer, CounterReply):
        return str(answer.number)
    if answer.text is not None:
        return answer.text
    return "" if isinstance(request, Find) else "OK"


def exchange_record(exchange: Exchange) -> dict[str, Any]:
    """What ``--json`` prints for one answer: request and answer escaped as in
    ``--trace``, the status, the latency, the bytes each way."""
    return {
        "request": escape(encode_request(exchange.request)),
        "answer": escape(exchange.line),
        "status": "error" if is_error(exchange.answer) else "ok",
        "latency_ms": round(exchange.latency * 1000, 3),
        "bytes_sent": exchange.sent,
        "bytes_received": exchange.received,
        "ended_by": exchange.ending,
    }


def failure_record(request: Request | str, message: str) -> dict[str, Any]:
    """What ``--json`` prints when no answer came: status ``failure`` and why."""
    sent = request if isinstance(request, str) else escape(encode_request(request))
    return {"request": sent, "answer": None, "status": "failure", "error": message}
