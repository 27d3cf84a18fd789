"""Section 1 of docs/spec.md: Transport.

The server accepts TCP connections on its address and speaks ABP/1 from the
first byte: no banner, no handshake, the first bytes a client sends are a
request.
"""

from __future__ import annotations

import pytest

from conformance.harness.timing import UNSOLICITED, budget
from conformance.judging.session import ANY_OK, ServerSession
from conformance.judging.verdict import fail
from protocol import Add, Find, Ok
from protocol.codec import no_entry


@pytest.mark.requirement("ABP-TRANSPORT-1")
def test_server_accepts_a_connection_and_answers_its_first_request(abp: ServerSession) -> None:
    """ABP-TRANSPORT-1: "A server MUST accept TCP connections on the address and
    port it is configured with and speak ABP/1 on each of them from the first
    byte." """
    name = abp.name()
    abp.expect(
        "ABP-TRANSPORT-1",
        Find(name),
        no_entry(name),
        "the first request on a fresh connection gets the wrong answer",
        by="meaning",
    )


@pytest.mark.requirement("ABP-TRANSPORT-1")
def test_server_sends_nothing_before_the_first_request(abp: ServerSession) -> None:
    """ABP-TRANSPORT-1: "... speak ABP/1 on each of them from the first byte":
    no banner or greeting precedes the first answer."""
    conn = abp.raw()
    unsolicited = conn.quiet_for(budget(UNSOLICITED, abp.target.timeout))
    if unsolicited and not unsolicited.startswith(b"ERROR: Server busy"):
        fail(
            "ABP-TRANSPORT-1",
            "the server sent bytes before any request (a banner is not ABP/1)",
            expected=b"",
            actual=unsolicited,
        )


@pytest.mark.requirement("ABP-TRANSPORT-1")
def test_every_connection_speaks_abp_from_its_first_byte(abp: ServerSession) -> None:
    """ABP-TRANSPORT-1: "... speak ABP/1 on each of them from the first byte":
    a change made on one connection is asked about on five fresh ones."""
    name = abp.name()
    abp.expect(
        "ABP-TRANSPORT-1", Add(name, "first"), ANY_OK, "add on a fresh connection", by="meaning"
    )
    for _ in range(5):
        abp.expect(
            "ABP-TRANSPORT-1",
            Find(name),
            Ok("first"),
            "a fresh connection does not find what another one stored",
            by="meaning",
        )
