"""Where the client connects (docs/spec.md section 1).

ABP-TRANSPORT-2: a client connects to the host and port it is given, the host
being a name, an IPv4 address or an IPv6 address. A menu client is given an
address only when its template has ``{host}``/``{port}``.
"""

from __future__ import annotations

import pytest

from conformance.harness.wire import Transcript
from conformance.judging.verdict import fail
from conformance.suites.client import checks
from conformance.suites.client.conftest import Serve
from conformance.suites.client.contracts import ClientUnderTest, Op
from conformance.suites.client.listen import ipv6_loopback_available
from conformance.suites.client.scenarios import Book

NAME = "Tim Berners-Lee"
ENTRY = "CERN, Building 31, Meyrin"
#: case: (what the client is given as {host}, where the suite listens)
HOSTS = {
    "ipv4": ("127.0.0.1", ("127.0.0.1",)),
    "ipv6": ("::1", ("::1",)),
    "name": ("localhost", ("127.0.0.1", "::1")),
}


@pytest.mark.requirement("ABP-TRANSPORT-2")
@pytest.mark.parametrize("case", list(HOSTS))
def test_connects_to_the_given_host_and_port(
    case: str, client: ClientUnderTest, serve: Serve, transcript: Transcript
) -> None:
    """ABP-TRANSPORT-2: given ``case`` as {host} and a free port, the client
    reaches the suite's server there and shows the entry it finds."""
    given, hosts = HOSTS[case]
    if client.contract == "menu" and not ("{host}" in client.template and client.takes_address):
        if case != "ipv4":
            pytest.skip(
                "the menu template takes no {host}/{port}: it connects where it is built to"
            )
        given, hosts = client.listen[0], (client.listen[0],)
    if "::1" in hosts and not ipv6_loopback_available():
        if case == "ipv6":
            pytest.skip("no IPv6 loopback (::1) on this machine")
        hosts = tuple(h for h in hosts if h != "::1")
    server = serve(client, book=Book({NAME: ENTRY}), hosts=hosts)
    outcome = client.perform(given, server.port, [Op("fnd", NAME)], transcript)
    checks.completed("ABP-TRANSPORT-2", outcome)
    if not server.connections:
        where = ", ".join(hosts)
        fail(
            "ABP-TRANSPORT-2",
            f"the client never connected (given {given!r}, port {server.port})",
            expected=f"a connection on {where} port {server.port}",
            actual="no connection",
        )
    checks.shown("ABP-TRANSPORT-2", ENTRY, "stdout", outcome.stdout)
