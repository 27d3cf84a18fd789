"""``protocol.address``: the one reading of ``HOST:PORT`` (ABP-TRANSPORT-3)."""

from __future__ import annotations

import pytest

from protocol.address import AddressError, format_address, parse_address, parse_host, parse_port


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:2007", ("127.0.0.1", 2007)),
        ("localhost:1", ("localhost", 1)),
        ("[::1]:65535", ("::1", 65535)),
        ("[fe80::1%lo]:80", ("fe80::1%lo", 80)),
    ],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected
    assert format_address(*expected) == text


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [("example", 2007, ("example", 2007)), ("[::1]", 9, ("::1", 9))],
)
def test_a_default_port_fills_in_a_bare_host(
    text: str, default: int, expected: tuple[str, int]
) -> None:
    assert parse_address(text, default) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        ":2007",
        "host",
        "[::1]",
        "::1:2007",
        "[::1]2007",
        "[]:1",
        "[::1:1",
        "h:0",
        "h:65536",
        "h:x",
        "h:-1",
        "h:\uff12",  # a fullwidth digit is not ASCII
    ],
)
def test_bad_addresses_say_what_is_wrong(text: str) -> None:
    with pytest.raises(AddressError):
        parse_address(text)


def test_port_must_be_decimal_in_range() -> None:
    assert parse_port("2007") == 2007
    for bad in ("0", "65536", "+1", " 1", "1e3"):
        with pytest.raises(AddressError):
            parse_port(bad)


def test_a_listening_program_may_ask_for_port_zero() -> None:
    assert parse_port("0", allow_zero=True) == 0
    with pytest.raises(AddressError):
        parse_port("0")


@pytest.mark.parametrize(("text", "host"), [("::1", "::1"), ("[::1]", "::1"), (" h ", "h")])
def test_parse_host(text: str, host: str) -> None:
    assert parse_host(text) == host


@pytest.mark.parametrize("text", ["", " ", "[]", "[::1", "a]b"])
def test_bad_hosts(text: str) -> None:
    with pytest.raises(AddressError):
        parse_host(text)
