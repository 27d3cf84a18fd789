"""``ServerConnection`` and ``ClientConnection``, joined in memory.

``ConnectionPair`` is h11's test helper: bytes one side sends are fed to the
other, so each test reads as a conversation.
"""

from __future__ import annotations

import pytest

from protocol import (
    Add,
    ClientConnection,
    ClientEvent,
    ConnectionClosed,
    CounterReply,
    CounterRequest,
    Error,
    Find,
    InvalidRequest,
    LegacyReply,
    LocalProtocolError,
    Ok,
    RemoteProtocolError,
    Remove,
    Request,
    Response,
    ServerBusy,
    ServerConnection,
    ServerEvent,
)
from protocol.codec import check_request, no_entry


class ConnectionPair:
    """A client and a server connection with an in-memory link between them."""

    def __init__(
        self, client: ClientConnection | None = None, server: ServerConnection | None = None
    ) -> None:
        self.client = client if client is not None else ClientConnection()
        self.server = server if server is not None else ServerConnection()
        self.now = 0.0
        self.wire: list[bytes] = []  # everything sent, both ways, in order

    def request(self, *requests: Request | bytes) -> list[ServerEvent]:
        """The client sends all requests in one write; the server's events."""
        data = b"".join(self.client.send(r) for r in requests)
        self.wire.append(data)
        return self.server.receive_data(data, self.now)

    def answer(self, *responses: Response) -> list[ClientEvent]:
        data = b"".join(self.server.send(r) for r in responses)
        self.wire.append(data)
        return self.client.receive_data(data, self.now)

    def serve(self, *requests: Request) -> list[ClientEvent]:
        """Requests out, and an echo server's answers (``OK: <name>``) back."""
        events = self.request(*requests)
        answers: list[Response] = []
        for event in events:
            assert isinstance(event, (Add, Remove, Find)), event
            answers.append(Ok(event.name))
        return self.answer(*answers)


def test_one_request_one_answer() -> None:
    pair = ConnectionPair()
    assert pair.request(Add("alice", "12 High St, Leeds")) == [Add("alice", "12 High St, Leeds")]
    assert pair.wire == [b"add:alice,12 High St, Leeds\n"]
    assert pair.server.unanswered == 1
    assert pair.client.outstanding == 1
    assert pair.answer(Ok()) == [Ok()]
    assert pair.wire[-1] == b"OK\n"
    assert pair.server.unanswered == 0
    assert pair.client.outstanding == 0


def test_many_requests_on_one_connection() -> None:
    """ABP-CONN-1."""
    pair = ConnectionPair()
    for i in range(50):
        assert pair.serve(Find(f"n{i}")) == [Ok(f"n{i}")]


def test_pipelined_requests_answered_in_order() -> None:
    """ABP-CONN-2: several requests before any answer is read."""
    pair = ConnectionPair()
    sent: list[Request] = [Add("a", "1"), Find("a"), Remove("a"), Find("a")]
    assert pair.request(*sent) == sent
    assert pair.server.unanswered == 4
    events = pair.answer(Ok(), Ok("1"), Ok(), no_entry("a"))
    assert events == [Ok(), Ok("1"), Ok(), Error("No entry for a")]
    assert pair.client.outstanding == 0


def test_invalid_request_keeps_its_place() -> None:
    """ABP-CONN-2, ABP-CONN-3: a bad line in a pipeline is answered in its turn."""
    server = ServerConnection()
    data = b"fnd:a\nADD:x\n\xff\n" + b"y" * 5000 + b"\nnocolon\nfnd:\n\x00\nrem:b\n"
    events = server.receive_data(data)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Find"] + ["InvalidRequest"] * 6 + ["Remove"]
    replies = [e.reply.text for e in events if isinstance(e, InvalidRequest)]
    assert replies == [
        "Unrecognised command: ADD",
        "Invalid UTF-8",
        "Request too long",
        "Malformed request",
        "Malformed request",
        "Malformed request",
    ]
    assert [e.raw for e in events if isinstance(e, InvalidRequest)][:2] == [b"ADD:x", b"\xff"]
    assert server.unanswered == 8
    for event in events:
        answer = event.reply if isinstance(event, InvalidRequest) else Ok()
        assert server.send(answer).endswith(b"\n")
    assert server.unanswered == 0


def test_server_send_without_a_request() -> None:
    server = ServerConnection()
    with pytest.raises(LocalProtocolError) as info:
        server.send(Ok())
    assert info.value.requirement == "ABP-FRAME-1"
    server.receive_data(b"fnd:a\n")
    server.send(Ok("x"))
    with pytest.raises(LocalProtocolError):  # one answer per request
        server.send(Ok("x"))


def test_server_busy_may_precede_any_request() -> None:
    """ABP-CONN-8."""
    server = ServerConnection()
    assert server.send(ServerBusy()) == b"ERROR: Server busy\n"
    client = ClientConnection()
    assert client.receive_data(b"ERROR: Server busy\n") == [ServerBusy()]
    assert client.receive_data(b"") == [ConnectionClosed()]


def test_server_refuses_answers_of_the_other_service() -> None:
    server = ServerConnection()
    server.receive_data(b"fnd:a\n")
    with pytest.raises(LocalProtocolError):
        server.send(CounterReply(1))
    with pytest.raises(LocalProtocolError):
        server.send(LegacyReply("x"))
    counter = ServerConnection(counter=True)
    counter.receive_data(b"hello\n")
    with pytest.raises(LocalProtocolError):
        counter.send(Ok())
    assert counter.unanswered == 1  # a refused answer is not counted


def test_server_legacy_request_at_half_close() -> None:
    """ABP-FRAME-5: the tutorial's client sends no terminator, then half-closes."""
    server = ServerConnection()
    assert server.receive_data(b"fnd:alice", 1.0) == []
    assert server.receive_data(b"") == [Find("alice"), ConnectionClosed()]
    assert server.peer_closed
    assert server.send(no_entry("alice")) == b"ERROR: No entry for alice\n"
    assert server.receive_data(b"") == []
    with pytest.raises(LocalProtocolError):
        server.receive_data(b"more")


def test_server_legacy_request_after_quiet_period() -> None:
    """ABP-FRAME-6."""
    server = ServerConnection(quiet_period=0.25)
    assert server.receive_data(b"add:a,b", 3.0) == []
    assert server.deadline() == pytest.approx(3.25)
    assert server.expire(3.2) == []
    assert server.expire(3.25) == [Add("a", "b")]
    assert server.deadline() is None
    assert server.receive_data(b"fnd:a\n", 4.0) == [Find("a")]


def test_server_without_quiet_period() -> None:
    server = ServerConnection(quiet_period=None)
    server.receive_data(b"fnd:a", 0.0)
    assert server.deadline() is None
    assert server.expire(100.0) == []


def test_server_half_close_with_nothing_buffered() -> None:
    server = ServerConnection()
    assert server.receive_data(b"") == [ConnectionClosed()]
    assert server.expire(10.0) == []


# -------------------------------------------------------------- client side


def test_client_legacy_mode_sends_no_terminator() -> None:
    client = ClientConnection(legacy=True)
    assert client.send(Add("a", "b,c")) == b"add:a,b,c"
    assert client.outstanding == 1


def test_client_legacy_mode_does_not_pipeline() -> None:
    """With no terminator, a second request would run into the first."""
    client = ClientConnection(legacy=True)
    client.send(Find("a"))
    with pytest.raises(LocalProtocolError) as info:
        client.send(Find("b"))
    assert info.value.requirement == "ABP-FRAME-2"
    assert client.outstanding == 1
    assert client.receive_data(b"OK: 1\n") == [Ok("1")]
    assert client.send(Find("b")) == b"fnd:b"  # answered: the next one may go


def test_client_legacy_answer_ended_by_eof() -> None:
    """ABP-FRAME-8: the tutorial's servers answer with no terminator, then close."""
    client = ClientConnection(legacy=True)
    client.send(Find("alice"))
    assert client.receive_data(b"12 High St") == []
    assert client.receive_data(b", Leeds") == []
    assert client.receive_data(b"") == [LegacyReply("12 High St, Leeds"), ConnectionClosed()]
    assert client.outstanding == 0


def test_client_legacy_answer_ended_by_quiet_period() -> None:
    client = ClientConnection(legacy=True, quiet_period=0.5)
    client.send(Find("alice"))
    assert client.receive_data(b"OK: x", 2.0) == []
    assert client.deadline() == pytest.approx(2.5)
    assert client.expire(2.4) == []
    assert client.expire(2.5) == [Ok("x")]
    assert client.outstanding == 0


def test_client_legacy_mode_default_quiet_period() -> None:
    client = ClientConnection(legacy=True)
    client.send(Find("a"))
    client.receive_data(b"hello", 0.0)
    assert client.deadline() == pytest.approx(0.1)


def test_client_legacy_mode_reads_terminated_answers_too() -> None:
    client = ClientConnection(legacy=True)
    client.send(Find("b"))
    assert client.receive_data(b"ERROR: No entry for b\r\n") == [Error("No entry for b")]


def test_client_accepts_an_unterminated_answer_at_eof() -> None:
    """ABP-FRAME-8 holds in the default mode too; only the quiet period is legacy."""
    client = ClientConnection()
    client.send(Find("a"))
    assert client.deadline() is None
    assert client.receive_data(b"OK: x", 0.0) == []
    assert client.deadline() is None
    assert client.expire(1e9) == []
    assert client.receive_data(b"") == [Ok("x"), ConnectionClosed()]


def test_client_reads_an_answer_whatever_the_segmentation() -> None:
    """ABP-FRAME-7, ABP-FRAME-14: 8192 bytes, one byte at a time."""
    client = ClientConnection()
    client.send(Find("a"))
    entry = "e" * 8188
    events: list[ClientEvent] = []
    for byte in f"OK: {entry}\r\n".encode():
        events += client.receive_data(bytes([byte]))
    assert events == [Ok(entry)]


def test_client_refuses_a_response_past_its_limit() -> None:
    client = ClientConnection(max_line=100)
    client.send(Find("a"))
    with pytest.raises(RemoteProtocolError) as info:
        client.receive_data(b"OK: " + b"x" * 200)
    assert info.value.requirement == "ABP-FRAME-14"


def test_client_eof_before_the_answer() -> None:
    """ABP-CONN-10: the caller sees the close and the request still outstanding."""
    client = ClientConnection()
    client.send(Find("a"))
    assert client.receive_data(b"") == [ConnectionClosed()]
    assert client.outstanding == 1
    with pytest.raises(LocalProtocolError) as info:
        client.send(Find("b"))
    assert info.value.requirement == "ABP-CONN-9"
    with pytest.raises(LocalProtocolError):
        client.receive_data(b"OK\n")


def test_unsolicited_answer() -> None:
    client = ClientConnection()
    with pytest.raises(RemoteProtocolError) as info:
        client.receive_data(b"OK\n")
    assert info.value.requirement == "ABP-FRAME-1"


def test_one_answer_too_many() -> None:
    client = ClientConnection()
    client.send(Find("a"))
    assert client.receive_data(b"OK: 1\nOK: 2\n") == [Ok("1")]  # the answer owed
    with pytest.raises(RemoteProtocolError) as raised:
        client.expire(0.0)  # any next call raises the unsolicited one
    assert raised.value.requirement == "ABP-FRAME-1"


@pytest.mark.parametrize("line", [b"hello\n", b"OK:x\n", b"\xff\n", b"ERROR: a\x00\n"])
def test_client_refuses_a_bad_answer(line: bytes) -> None:
    client = ClientConnection()
    client.send(Find("a"))
    with pytest.raises(RemoteProtocolError):
        client.receive_data(line)


# ----------------------------------------------------------- counter service


def test_counter_conversation() -> None:
    pair = ConnectionPair(ClientConnection(counter=True), ServerConnection(counter=True))
    events = pair.request(b"hello", b"", b"fnd:\xff")
    assert events == [CounterRequest(b"hello"), CounterRequest(b""), CounterRequest(b"fnd:\xff")]
    answers = pair.answer(CounterReply(7), CounterReply(7), CounterReply(7))
    assert answers == [CounterReply(7)] * 3
    assert pair.wire[-1] == b"Thankyou!, processed connection number 7\n" * 3


def test_counter_client_sends_a_request_as_a_line() -> None:
    client = ClientConnection(counter=True)
    assert client.send(Find("a")) == b"fnd:a\n"


def test_counter_too_long() -> None:
    """ABP-COUNTER-4: the counter client must read the counter server's refusal."""
    pair = ConnectionPair(ClientConnection(counter=True), ServerConnection(counter=True))
    (event,) = pair.request(b"x" * 5000)
    assert isinstance(event, InvalidRequest)
    assert pair.answer(event.reply) == [Error("Request too long")]


def test_counter_client_reads_server_busy() -> None:
    client = ClientConnection(counter=True)
    assert client.receive_data(b"ERROR: Server busy\n") == [ServerBusy()]


def test_counter_client_legacy() -> None:
    """The tutorial's counter server: no terminator, then close."""
    client = ClientConnection(counter=True, legacy=True)
    assert client.send(b"hi") == b"hi"
    assert client.receive_data(b"Thankyou!, processed connection number 12") == []
    assert client.receive_data(b"") == [CounterReply(12), ConnectionClosed()]


def test_counter_client_refuses_other_answers() -> None:
    client = ClientConnection(counter=True)
    client.send(b"x")
    with pytest.raises(RemoteProtocolError) as info:
        client.receive_data(b"OK\n")
    assert info.value.requirement == "ABP-COUNTER-1"


def test_raw_lines_only_for_the_counter_service() -> None:
    with pytest.raises(LocalProtocolError):
        ClientConnection().send(b"fnd:a")
    with pytest.raises(LocalProtocolError):
        ClientConnection(counter=True).send(b"a\nb")


# -------------------------------------------------------------- check_request


@pytest.mark.parametrize(
    ("request_", "requirement"),
    [
        (Find("a\r"), "ABP-REQ-13"),
        (Remove("\rx"), "ABP-REQ-13"),
        (Add("a", "b\r"), "ABP-REQ-13"),
        (Add("a", "\r"), "ABP-REQ-13"),
        # a ',' in a rem/fnd NAME changes no meaning: a SHOULD (issue 9)
        (Find("a,b"), "ABP-REQ-14"),
        (Remove(","), "ABP-REQ-14"),
    ],
)
def test_check_request_refuses(request_: Request, requirement: str) -> None:
    """ABP-REQ-13 (and the SHOULD of ABP-REQ-14): refused without sending anything."""
    with pytest.raises(LocalProtocolError) as info:
        check_request(request_)
    assert info.value.requirement == requirement
    client = ClientConnection()
    with pytest.raises(LocalProtocolError):
        client.send(request_)
    assert client.outstanding == 0


@pytest.mark.parametrize(
    "request_",
    [Find("a:b"), Find(" "), Add("a", ""), Add("a:b", "c,d:e\t"), Remove("\U0010ffff")],
)
def test_check_request_accepts(request_: Request) -> None:
    check_request(request_)
    assert ClientConnection().send(request_).endswith(b"\n")


@pytest.mark.parametrize("thing", [Ok("x"), "fnd:x", b"fnd:x", None])
def test_check_request_refuses_what_is_not_a_request(thing: object) -> None:
    """A caller's mistake is a LocalProtocolError, not an AttributeError."""
    with pytest.raises(LocalProtocolError):
        check_request(thing)  # type: ignore[arg-type]
    if not isinstance(thing, bytes):
        client = ClientConnection()
        with pytest.raises(LocalProtocolError):
            client.send(thing)  # type: ignore[arg-type]
        assert client.outstanding == 0


def test_good_answers_before_a_violation_in_one_chunk_are_not_lost() -> None:
    """The violation is raised on the next call, after the good answers."""
    client = ClientConnection()
    client.send(Find("a"))
    client.send(Find("b"))
    assert client.receive_data(b"OK: x\nBOGUS\n") == [Ok("x")]
    with pytest.raises(RemoteProtocolError) as raised:
        client.receive_data(b"")
    assert raised.value.requirement == "ABP-RESP-1"


def test_a_violation_alone_is_raised_at_once() -> None:
    client = ClientConnection()
    client.send(Find("a"))
    with pytest.raises(RemoteProtocolError):
        client.receive_data(b"BOGUS\n")
