"""``protocol._framing.LineReader``: lines out of a byte stream (section 2).

Time is an argument everywhere, so the quiet period is tested without a clock.
"""

from __future__ import annotations

import pytest

from protocol.codec import LineFrame, LineReader, OverlongFrame

LIMIT = 4096


def lines(frames: list[LineFrame | OverlongFrame]) -> list[bytes | None]:
    """Frames as line payloads; an overlong line shows as None."""
    return [f.data if isinstance(f, LineFrame) else None for f in frames]


@pytest.fixture
def reader() -> LineReader:
    return LineReader(LIMIT, quiet_period=0.1)


def test_lf_and_crlf(reader: LineReader) -> None:
    """ABP-FRAME-3: LF and CRLF both end a line; the CR is not part of it."""
    frames = reader.feed(b"a\nb\r\n\nc", 0.0)
    assert frames == [
        LineFrame(b"a", b"\n"),
        LineFrame(b"b", b"\r\n"),
        LineFrame(b"", b"\n"),
    ]
    assert reader.buffered == 1


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a\rb\n", b"a\rb"),  # a CR inside the line is data
        (b"\ra\n", b"\ra"),
        (b"a\r\r\n", b"a\r"),  # only the one CR right before the LF goes
        (b"\r\n", b""),
        (b"\r\r\n", b"\r"),
    ],
)
def test_cr_not_before_lf_is_kept(reader: LineReader, data: bytes, expected: bytes) -> None:
    assert lines(reader.feed(data, 0.0)) == [expected]


def test_crlf_split_across_feeds(reader: LineReader) -> None:
    assert reader.feed(b"fnd:a\r", 0.0) == []
    assert reader.feed(b"\n", 0.0) == [LineFrame(b"fnd:a", b"\r\n")]


def test_one_byte_at_a_time(reader: LineReader) -> None:
    """ABP-FRAME-4: segmentation does not matter."""
    frames = []
    for byte in b"add:a,b\r\nfnd:a\n":
        frames += reader.feed(bytes([byte]), 0.0)
    assert lines(frames) == [b"add:a,b", b"fnd:a"]


def test_longest_line_accepted(reader: LineReader) -> None:
    """ABP-FRAME-9: 4096 bytes, terminator excluded."""
    assert lines(reader.feed(b"x" * LIMIT + b"\n", 0.0)) == [b"x" * LIMIT]
    assert lines(reader.feed(b"y" * LIMIT + b"\r\n", 0.0)) == [b"y" * LIMIT]


def test_longest_line_with_crlf_split_between_cr_and_lf(reader: LineReader) -> None:
    """4096 bytes + CR held (4097 buffered) must not be judged too long yet."""
    assert reader.feed(b"x" * LIMIT + b"\r", 0.0) == []
    assert reader.buffered == LIMIT + 1
    assert lines(reader.feed(b"\nfnd:a\n", 0.0)) == [b"x" * LIMIT, b"fnd:a"]


def test_longest_line_fed_in_pieces(reader: LineReader) -> None:
    for _ in range(LIMIT // 64):
        assert reader.feed(b"z" * 64, 0.0) == []
    assert lines(reader.feed(b"\n", 0.0)) == [b"z" * LIMIT]


def test_one_byte_too_long_refused_once(reader: LineReader) -> None:
    """ABP-FRAME-10: once per such line."""
    frames = reader.feed(b"x" * (LIMIT + 1) + b"\nfnd:a\n", 0.0)
    assert frames == [OverlongFrame(LIMIT + 1), LineFrame(b"fnd:a", b"\n")]


def test_one_byte_too_long_then_crlf(reader: LineReader) -> None:
    frames = reader.feed(b"x" * (LIMIT + 1) + b"\r\nok\n", 0.0)
    assert lines(frames) == [None, b"ok"]


def test_overlong_line_refused_before_its_lf_arrives(reader: LineReader) -> None:
    """The answer must not wait for an LF that may never come."""
    frames = reader.feed(b"x" * (LIMIT + 2), 0.0)
    assert frames == [OverlongFrame(LIMIT + 2)]
    assert reader.buffered == 0  # nothing of it is kept


def test_rest_of_overlong_line_discarded_until_lf(reader: LineReader) -> None:
    """ABP-FRAME-11: the rest of the long line is discarded; later lines are normal."""
    assert lines(reader.feed(b"x" * 5000, 0.0)) == [None]
    for _ in range(10):  # megabytes more of the same line: no second refusal
        assert reader.feed(b"y:" * 3000, 0.0) == []
        assert reader.buffered <= LIMIT + 1
    assert lines(reader.feed(b"still the long line\nfnd:a\r\nrem:b\n", 0.0)) == [
        b"fnd:a",
        b"rem:b",
    ]


def test_a_pause_inside_an_overlong_line_does_not_end_it(reader: LineReader) -> None:
    """ABP-FRAME-11: no quiet period inside the rest of a long line (issue 10 item 8)."""
    assert lines(reader.feed(b"x" * 5000, 0.0)) == [None]
    assert reader.feed(b"more of it", 0.01) == []
    assert reader.deadline() is None
    assert reader.expire(60.0) == []
    assert lines(reader.feed(b" and the rest\nfnd:a\n", 60.0)) == [b"fnd:a"]


def test_two_overlong_lines_two_refusals(reader: LineReader) -> None:
    data = b"a" * 5000 + b"\n" + b"b" * 9000 + b"\nc\n"
    assert lines(reader.feed(data, 0.0)) == [None, None, b"c"]


def test_quiet_period_deadline_and_expire(reader: LineReader) -> None:
    """ABP-FRAME-6: bytes with no LF become a line after the quiet period."""
    assert reader.deadline() is None  # nothing buffered
    assert reader.feed(b"fnd:a", 10.0) == []
    assert reader.deadline() == pytest.approx(10.1)
    assert reader.expire(10.05) == []  # too early: nothing happens
    assert reader.feed(b"b", 10.08) == []  # more data moves the deadline
    assert reader.deadline() == pytest.approx(10.18)
    assert reader.expire(10.15) == []
    assert reader.expire(10.2) == [LineFrame(b"fnd:ab", b"")]
    assert reader.deadline() is None
    assert reader.expire(99.0) == []  # nothing twice


def test_quiet_period_drops_a_trailing_cr(reader: LineReader) -> None:
    reader.feed(b"fnd:a\r", 0.0)
    assert reader.expire(1.0) == [LineFrame(b"fnd:a", b"")]


def test_no_quiet_period_without_one() -> None:
    reader = LineReader(LIMIT, quiet_period=None)
    reader.feed(b"fnd:a", 0.0)
    assert reader.deadline() is None
    assert reader.expire(1e9) == []
    assert reader.feed_eof() == [LineFrame(b"fnd:a", b"")]


def test_deadline_after_complete_lines_only(reader: LineReader) -> None:
    reader.feed(b"fnd:a\n", 0.0)
    assert reader.deadline() is None


def test_eof_flushes_a_legacy_line(reader: LineReader) -> None:
    """ABP-FRAME-5: at half-close the buffered bytes are one last request."""
    assert lines(reader.feed(b"fnd:a\nfnd:b", 0.0)) == [b"fnd:a"]
    assert reader.feed_eof() == [LineFrame(b"fnd:b", b"")]
    assert reader.at_eof
    assert reader.deadline() is None
    assert reader.feed_eof() == []  # idempotent


def test_eof_with_nothing_buffered(reader: LineReader) -> None:
    reader.feed(b"fnd:a\n", 0.0)
    assert reader.feed_eof() == []


def test_eof_flushes_the_longest_legacy_line(reader: LineReader) -> None:
    reader.feed(b"x" * LIMIT + b"\r", 0.0)
    assert lines(reader.feed_eof()) == [b"x" * LIMIT]


def test_eof_after_one_byte_too_many(reader: LineReader) -> None:
    reader.feed(b"x" * (LIMIT + 1), 0.0)
    assert reader.feed_eof() == [OverlongFrame(LIMIT + 1)]


def test_eof_inside_an_overlong_line(reader: LineReader) -> None:
    """The long line was refused already: EOF adds no second refusal, no line."""
    assert lines(reader.feed(b"x" * 6000, 0.0)) == [None]
    assert reader.feed_eof() == []


def test_data_after_eof_is_a_caller_error(reader: LineReader) -> None:
    reader.feed_eof()
    with pytest.raises(ValueError, match="after end of stream"):
        reader.feed(b"x", 0.0)


def test_empty_feed_changes_nothing(reader: LineReader) -> None:
    reader.feed(b"ab", 5.0)
    assert reader.feed(b"", 6.0) == []
    assert reader.deadline() == pytest.approx(5.1)


def test_small_limit() -> None:
    reader = LineReader(3)
    assert lines(reader.feed(b"abc\nabcd\nab\r\n", 0.0)) == [b"abc", None, b"ab"]
