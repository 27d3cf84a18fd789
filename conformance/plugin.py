"""The pytest plugin: target options, the ``requirement`` marker, fixtures.

Registered through the ``pytest11`` entry point, so ``pytest --abp-server
HOST:PORT --pyargs conformance.server_tests`` works as well as ``conformance
run``. Without ``--abp-server`` it stays inert (the project's own tests load it
too).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from conformance.session import FRAMINGS, SERVICES, ServerSession, ServerTarget
from protocol import requirements

MARKER = "requirement"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("abp", "ABP/1 conformance")
    group.addoption("--abp-server", metavar="HOST:PORT", help="the ABP/1 server under test")
    group.addoption(
        "--abp-server-cmd",
        metavar="TEMPLATE",
        help="how to start the server ({port}, {host}, {tmpdir}); unlocks restart/kill tests",
    )
    group.addoption("--abp-service", choices=SERVICES, default="abp")
    group.addoption("--abp-framing", choices=FRAMINGS, default="line")
    group.addoption("--abp-timeout", type=float, default=5.0, metavar="S")
    group.addoption("--abp-seed", type=int, default=0, metavar="N")
    group.addoption("--abp-fuzz-examples", type=int, default=50, metavar="N")
    group.addoption("--abp-idle-timeout", type=float, default=None, metavar="S")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(*ids): the docs/spec.md requirement(s) this test checks"
    )


def parse_address(text: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``; raises ValueError with a readable message."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a HOST:PORT address: {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 address needs brackets: {text!r}")
    return host, int(port)


@pytest.fixture(scope="session")
def abp_target(pytestconfig: pytest.Config) -> ServerTarget:
    address = pytestconfig.getoption("--abp-server")
    if not address:
        pytest.skip("no --abp-server given")
    host, port = parse_address(address)
    return ServerTarget(
        host,
        port,
        service=pytestconfig.getoption("--abp-service"),
        framing=pytestconfig.getoption("--abp-framing"),
        timeout=pytestconfig.getoption("--abp-timeout"),
        server_cmd=pytestconfig.getoption("--abp-server-cmd"),
        seed=pytestconfig.getoption("--abp-seed"),
        fuzz_examples=pytestconfig.getoption("--abp-fuzz-examples"),
        idle_timeout=pytestconfig.getoption("--abp-idle-timeout"),
    )


@pytest.fixture
def abp(abp_target: ServerTarget, request: pytest.FixtureRequest) -> Iterator[ServerSession]:
    """One test's session with the server under test; its transcript is
    attached to the report."""
    session = ServerSession(abp_target, test_id=request.node.nodeid)
    request.node.abp_session = session
    try:
        yield session
    finally:
        session.close()


def requirement_ids(item: pytest.Item) -> list[str]:
    ids: list[str] = []
    for mark in item.iter_markers(MARKER):
        ids.extend(str(arg) for arg in mark.args)
    return ids


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    known = requirements.catalogue()
    for item in items:
        for rid in requirement_ids(item):
            if rid not in known:
                raise pytest.UsageError(f"{item.nodeid}: unknown requirement {rid}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    ids = requirement_ids(item)
    if ids and call.when == "call":
        report.user_properties.append(("requirements", " ".join(ids)))
        session = getattr(item, "abp_session", None)
        if session is not None and session.transcript.records:
            report.user_properties.append(("transcript", session.transcript.render()))
    return report
