"""The suite's verdicts acquit what the spec allows (issue 9 items 1 and 5).

Section 4: "When a line breaks more than one rule ..., any of the errors that
apply is a conforming answer." The suite judges an error answer against every
error that applies (``refusal``, from ``protocol.codec.applicable_errors``),
never against the reference server's check order. The proof is a real server
on 127.0.0.1 that checks UTF-8 before NUL (the reference checks NUL first),
judged by the real ``conformance run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.corpus.servers.base import Server
from conformance.corpus.servers.harness import run_suite
from conformance.harness.process import accepts_connections, free_port, wait_until
from conformance.harness.timing import PROCESS_EXIT, PROCESS_READY
from conformance.judging.session import line_matches, refusal, wire_form
from protocol import Error, RemoteProtocolError, Request
from protocol.codec import INVALID_UTF8, MALFORMED_REQUEST, encode_response, unrecognised

#: NUL and invalid UTF-8 in one line: the reported false alarm (ABP-FRAME-13
#: blamed on a server answering `Invalid UTF-8`).
BOTH = b"fnd:\xf4\x86\x00\xb7\x82"
RUN_TIMEOUT = 150.0


def test_a_line_breaking_two_rules_may_get_either_error() -> None:
    want = refusal(BOTH)
    assert want.errors == {Error(INVALID_UTF8), Error(MALFORMED_REQUEST)}
    assert line_matches(want, b"ERROR: Invalid UTF-8\n")
    assert line_matches(want, b"ERROR: Malformed request\r\n")
    assert not line_matches(want, b"ERROR: Malformed request")  # no LF
    assert not line_matches(want, b"ERROR: Unrecognised command: fnd\n")
    assert want.requirement == "ABP-FRAME-13"  # blamed only when neither comes


def test_a_refusal_shows_every_allowed_answer() -> None:
    shown = repr(refusal(b"Fnd:\xff"))
    assert '"ERROR: Invalid UTF-8\\n"' in shown
    assert " or " in shown
    assert wire_form(refusal(b"nope:x")) == encode_response(unrecognised("nope"))


def test_a_valid_request_is_no_refusal() -> None:
    with pytest.raises(ValueError, match="not a bad request"):
        refusal(b"fnd:x")


class Utf8First(Server):
    """Correct but for its check order: UTF-8 first, then the protocol's own."""

    def decode(self, line: bytes) -> Request:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteProtocolError("not UTF-8", "ABP-FRAME-12", Error(INVALID_UTF8)) from None
        return super().decode(line)


@contextlib.contextmanager
def serving(server: Server) -> Iterator[int]:
    """``server`` on 127.0.0.1 in a thread of its own; yields its port."""
    port = free_port()
    loop = asyncio.new_event_loop()
    task: asyncio.Task[None] | None = None

    def run() -> None:
        nonlocal task
        asyncio.set_event_loop(loop)
        task = loop.create_task(server.serve("127.0.0.1", port))
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task)
        loop.close()

    thread = threading.Thread(target=run, name="utf8-first", daemon=True)
    thread.start()
    try:
        listening = wait_until(lambda: accepts_connections("127.0.0.1", port), PROCESS_READY)
        assert listening, "the server did not listen"
        yield port
    finally:
        loop.call_soon_threadsafe(lambda: task.cancel() if task else None)
        thread.join(PROCESS_EXIT)
        assert not thread.is_alive()


#: the tests that judge error answers to bad lines
ERROR_TESTS = (
    "malformed_lines or byte_streams or error_answers or pipelined_errors"
    " or every_answer_is_exactly or nul_byte or invalid_utf8 or empty_line"
)


@pytest.mark.parametrize("seed", [0, 7])
def test_a_server_checking_utf8_before_nul_is_acquitted(tmp_path: Path, seed: int) -> None:
    with serving(Utf8First(quiet_period=0.1, idle_timeout=None)) as port:
        run = run_suite(
            "--server", f"127.0.0.1:{port}", "-n", "0", "--seed", str(seed), "-k", ERROR_TESTS,
            json_path=tmp_path / "report.json",
            timeout=RUN_TIMEOUT,
        )  # fmt: skip
    assert run.report, run.explain()
    assert len(run.tests) >= 10, run.explain()
    assert run.with_outcome("FAIL", "WARN") == [], run.explain()
    assert run.returncode == 0, run.explain()
