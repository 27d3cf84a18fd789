"""The messages and events of ``protocol._events``: validated, frozen, hashable."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from protocol import (
    Add,
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
)
from protocol.codec import NO_ENTRY_FOR, UNRECOGNISED_COMMAND, no_entry, unrecognised

# Every kind of event, once, for the frozen/hashable checks.
ALL_EVENTS: list[Any] = [
    Add("alice", "12 High St"),
    Remove("alice"),
    Find("alice"),
    CounterRequest(b"anything\x00"),
    Ok(),
    Ok("x"),
    Error("x"),
    CounterReply(1),
    LegacyReply("free text"),
    ConnectionClosed(),
]


@pytest.mark.parametrize(
    ("make", "requirement"),
    [
        (lambda: Add("a,b", "x"), "ABP-REQ-13"),  # the name ends at the first ","
        (lambda: Add("", "x"), "ABP-REQ-13"),
        (lambda: Add("a\nb", "x"), "ABP-REQ-13"),
        (lambda: Add("a\x00", "x"), "ABP-REQ-13"),
        (lambda: Add("a", "x\ny"), "ABP-REQ-13"),
        (lambda: Add("a", "\x00"), "ABP-REQ-13"),
        (lambda: Remove(""), "ABP-REQ-13"),
        (lambda: Remove("a\n"), "ABP-REQ-13"),
        (lambda: Find(""), "ABP-REQ-13"),
        (lambda: Find("\x00"), "ABP-REQ-13"),
        (lambda: Ok("a\nb"), "ABP-FRAME-1"),
        (lambda: Ok("\x00"), "ABP-FRAME-1"),
        (lambda: Error("a\n"), "ABP-FRAME-1"),
        (lambda: Error("\x00"), "ABP-FRAME-1"),
        (lambda: CounterReply(0), "ABP-COUNTER-2"),
        (lambda: CounterReply(-3), "ABP-COUNTER-2"),
        (lambda: CounterReply(True), "ABP-COUNTER-2"),
        (lambda: CounterReply("1"), "ABP-COUNTER-2"),  # type: ignore[arg-type]
    ],
)
def test_constructors_validate(make: Callable[[], object], requirement: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        make()
    assert info.value.requirement == requirement
    assert requirement in str(info.value)


@pytest.mark.parametrize(
    "make",
    [lambda: Add(b"a", "x"), lambda: Find(1), lambda: Ok(b"x")],  # type: ignore[arg-type]
)
def test_constructors_refuse_non_text(make: Callable[[], object]) -> None:
    with pytest.raises(LocalProtocolError):
        make()


def test_what_the_wire_can_carry_is_accepted() -> None:
    """Constructors check only wire needs; ABP-REQ-13 proper is ``check_request``'s."""
    assert Add("a:b", "c,d:e").entry == "c,d:e"
    assert Add("x").entry == ""
    assert Find("a,b").name == "a,b"  # a server may receive it
    assert Find("a\rb").name == "a\rb"
    assert Ok("").text == ""
    assert Ok().text is None
    assert Error("").text == ""


@pytest.mark.parametrize(
    "event", [e for e in ALL_EVENTS if dataclasses.fields(e)], ids=lambda e: type(e).__name__
)
def test_events_are_frozen(event: Any) -> None:
    for field in dataclasses.fields(event):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(event, field.name, None)


def test_a_field_less_event_takes_no_attribute() -> None:
    # Python < 3.12 raises TypeError here (a frozen+slots dataclass quirk), later
    # versions FrozenInstanceError (an AttributeError): either way, nothing is set.
    event = ConnectionClosed()
    with pytest.raises((AttributeError, TypeError)):
        event.extra = 1  # type: ignore[attr-defined]
    assert not hasattr(event, "extra")


def test_events_are_hashable_and_compare_by_value() -> None:
    assert len(set(ALL_EVENTS)) == len(ALL_EVENTS)
    assert Add("a", "b") == Add("a", "b")
    assert hash(Add("a", "b")) == hash(Add("a", "b"))
    assert Add("a", "b") != Add("a", "c")
    assert Find("a") != Remove("a")  # type: ignore[comparison-overlap]
    assert Ok() != Ok("")
    assert ConnectionClosed() == ConnectionClosed()
    assert {Ok("x"): 1}[Ok("x")] == 1


def test_error_helpers() -> None:
    assert no_entry("a:b") == Error(NO_ENTRY_FOR + "a:b") == Error("No entry for a:b")
    assert unrecognised("ADD") == Error(UNRECOGNISED_COMMAND + "ADD")
    assert unrecognised("ADD").text == "Unrecognised command: ADD"


def test_invalid_request_carries_its_answer() -> None:
    error = RemoteProtocolError("bad", "ABP-REQ-9", Error("Malformed request"))
    event = InvalidRequest(error, b"nocolon")
    assert event.reply == Error("Malformed request")
    assert event.raw == b"nocolon"
    assert hash(event) == hash(InvalidRequest(error, b"nocolon"))


def test_errors_name_their_requirement() -> None:
    error = RemoteProtocolError("bad thing", "ABP-REQ-9")
    assert str(error) == "bad thing [ABP-REQ-9]"
    assert error.message == "bad thing"
    assert error.reply is None
    assert isinstance(LocalProtocolError("x", "ABP-REQ-13"), Exception)
