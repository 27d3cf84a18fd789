"""``protocol.escape``: bytes shown to people and read back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.escape import EscapeError, escape, unescape

#: (bytes, text): escape(bytes) == text and unescape(text) == bytes.
EXAMPLES = [
    (b"", ""),
    (b"fnd:alice\n", "fnd:alice\\n"),
    (b"add:a,b\r\n", "add:a,b\\r\\n"),
    (b"a\tb", "a\\tb"),
    (b"back\\slash", "back\\\\slash"),
    (b"\x00", "\\x00"),
    (b"\x7f\x1b", "\\x7f\\x1b"),
    (b"\xff\xfe", "\\xff\\xfe"),  # not UTF-8
    (b"\xed\xa0\x80", "\\xed\\xa0\\x80"),  # an encoded surrogate is not UTF-8
    (b"caf\xc3\xa9", "caf\u00e9"),  # UTF-8 text is shown as text
    (b"\xf0\x9f\x98\x80", "\U0001f600"),
    (b"\xc2\x85", "\\xc2\\x85"),  # NEL: valid UTF-8 but not printable
    (b"\xe2\x80\xa8", "\\xe2\\x80\\xa8"),  # U+2028
    (b"\\x41", "\\\\x41"),  # a literal backslash-x stays distinct from an escape
]


@pytest.mark.parametrize(("data", "text"), EXAMPLES)
def test_examples_both_ways(data: bytes, text: str) -> None:
    assert escape(data) == text
    assert unescape(text) == data


@pytest.mark.parametrize(
    ("text", "data"),
    [("\\0", b"\x00"), ("\\x0A", b"\n"), ("\\xAb", b"\xab"), ("a\\r", b"a\r"), ("é", b"\xc3\xa9")],
)
def test_unescape_accepts_what_people_type(text: str, data: bytes) -> None:
    assert unescape(text) == data


@pytest.mark.parametrize(
    "text", ["\\", "abc\\", "\\q", "\\x", "\\x4", "\\xg0", "\\x 1", "\\N", "\\u00e9", "\ud800"]
)
def test_bad_escapes(text: str) -> None:
    with pytest.raises(EscapeError):
        unescape(text)


def test_undecodable_command_line_bytes_stand_for_themselves() -> None:
    """``sys.argv`` holds non-UTF-8 bytes as lone surrogates (surrogateescape)."""
    assert unescape("fnd:\udcff") == b"fnd:\xff"


def test_escape_error_is_a_value_error() -> None:
    assert issubclass(EscapeError, ValueError)


@settings(deadline=None)
@given(st.binary())
def test_unescape_inverts_escape(data: bytes) -> None:
    assert unescape(escape(data)) == data


@settings(deadline=None)
@given(st.binary(), st.binary())
def test_escape_is_injective(a: bytes, b: bytes) -> None:
    if a != b:
        assert escape(a) != escape(b)


@settings(deadline=None)
@given(st.binary())
def test_escaped_text_is_one_printable_line(data: bytes) -> None:
    text = escape(data)
    assert text.isprintable()
    assert "\n" not in text
    assert "\r" not in text


@settings(deadline=None)
@given(st.text())
def test_text_without_backslash_is_its_utf8(text: str) -> None:
    text = text.replace("\\", "")
    try:
        expected = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        with pytest.raises(EscapeError):
            unescape(text)
        return
    assert unescape(text) == expected
