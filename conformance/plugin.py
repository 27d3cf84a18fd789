"""The pytest plugin: target options, the ``requirement`` marker, fixtures.

Registered through the ``pytest11`` entry point, so ``pytest --abp-server
HOST:PORT --pyargs conformance.suites.server`` works as well as ``conformance
run`` (``--abp-server tls://HOST:PORT`` with ``--abp-ca``, ``--abp-cert``,
``--abp-key``: the same suite over TLS). Without ``--abp-server`` it stays
inert (the project's own tests load it too).

What reaches the reports, through ``report.user_properties`` (which xdist
carries to the controlling process): ``requirements`` (the marker's IDs, on
every phase), ``failure`` and ``failed_requirement`` (on a failed phase), and,
on teardown, ``transcript`` and ``transcript_records`` (JSON) of the test's
``abp`` session (``request.node.abp_session``) or of
``request.node.abp_transcript``.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator, Sequence

import pytest

from conformance.harness.lines import LineOverflow
from conformance.harness.timing import TIMEOUT
from conformance.harness.tls import TlsSettings, TlsSetupError, split_target
from conformance.harness.wire import Transcript, WireError
from conformance.judging.session import FRAMINGS, SERVICES, ServerSession, ServerTarget
from conformance.judging.verdict import RequirementFailed, on_the_wire
from conformance.reports.model import selects
from protocol import DEFAULT_QUIET_PERIOD, requirements
from protocol.address import parse_address

MARKER = "requirement"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("abp", "ABP/1 conformance")
    group.addoption(
        "--abp-server",
        metavar="HOST:PORT",
        help="the ABP/1 server under test; tls://HOST:PORT reaches it over TLS",
    )
    group.addoption(
        "--abp-ca",
        metavar="FILE",
        help="tls:// target: PEM CA certificate(s) to trust (default: the system's)",
    )
    group.addoption(
        "--abp-cert",
        metavar="FILE",
        help="tls:// target: the suite's client certificate (PEM), for a server "
        "that verifies clients",
    )
    group.addoption(
        "--abp-key", metavar="FILE", help="tls:// target: the private key of --abp-cert (PEM)"
    )
    group.addoption(
        "--abp-tls-client-auth",
        action="store_true",
        help="tls:// target: the server verifies client certificates (tests ABP-TLS-4; "
        "needs --abp-cert)",
    )
    group.addoption(
        "--abp-server-cmd",
        metavar="TEMPLATE",
        help="how to start the server ({port}, {host}, {tmpdir}); unlocks restart/kill tests",
    )
    group.addoption("--abp-service", choices=SERVICES, default="abp")
    group.addoption("--abp-framing", choices=FRAMINGS, default="line")
    group.addoption("--abp-timeout", type=float, default=TIMEOUT, metavar="S")
    group.addoption("--abp-seed", type=int, default=0, metavar="N")
    group.addoption("--abp-fuzz-examples", type=int, default=50, metavar="N")
    group.addoption("--abp-idle-timeout", type=float, default=None, metavar="S")
    group.addoption("--abp-quiet-period", type=float, default=DEFAULT_QUIET_PERIOD, metavar="S")
    group.addoption(
        "--abp-requirement",
        action="append",
        default=[],
        metavar="ID",
        help="run only the tests of this requirement (or of a section: ABP-FRAME); repeatable",
    )
    # the client suite (conformance.suites.client) reads these
    group.addoption(
        "--abp-client",
        metavar="TEMPLATE",
        help="argv-contract client under test ({host} {port} {op} {name} {entry})",
    )
    group.addoption("--abp-client-menu", metavar="TEMPLATE", help="menu-contract client under test")
    group.addoption(
        "--abp-listen", metavar="HOST:PORT", help="where the client suite's scripted server listens"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(*ids): the docs/spec.md requirement(s) this test checks"
    )
    if any(config.getoption(o) for o in ("--abp-server", "--abp-client", "--abp-client-menu")):
        # a run against an implementation: examples are not kept between runs
        # (the verdict depends on --abp-seed only), and network latency is no error
        from hypothesis import settings

        settings.register_profile("abp-conformance", database=None, deadline=None)
        settings.load_profile("abp-conformance")
    tls_settings(config)  # a bad TLS option is a usage error before any test


def tls_settings(config: pytest.Config) -> TlsSettings | None:
    """The ``--abp-ca/-cert/-key/-tls-client-auth`` options, for a ``tls://``
    target; ``pytest.UsageError`` when they cannot be used."""
    address = config.getoption("--abp-server")
    tls = bool(address) and split_target(address)[1]
    names = ("--abp-ca", "--abp-cert", "--abp-key", "--abp-tls-client-auth")
    given = [name for name in names if config.getoption(name)]
    if not tls:
        if given:
            raise pytest.UsageError(f"{given[0]} needs --abp-server tls://HOST:PORT")
        return None
    settings = TlsSettings(
        ca=config.getoption("--abp-ca"),
        cert=config.getoption("--abp-cert"),
        key=config.getoption("--abp-key"),
        client_auth=config.getoption("--abp-tls-client-auth"),
    )
    try:
        settings.check()
    except TlsSetupError as exc:
        raise pytest.UsageError(exc.render("--abp-")) from None
    return settings


@pytest.fixture(scope="session")
def abp_target(pytestconfig: pytest.Config) -> ServerTarget:
    address = pytestconfig.getoption("--abp-server")
    if not address:
        pytest.skip("no --abp-server given")
    host, port = parse_address(split_target(address)[0])
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
        tls=tls_settings(pytestconfig),
        quiet_period=pytestconfig.getoption("--abp-quiet-period"),
    )


@pytest.fixture
def abp(abp_target: ServerTarget, request: pytest.FixtureRequest) -> Iterator[ServerSession]:
    """One test's session with the server under test; its transcript is
    attached to the report."""
    session = ServerSession(abp_target)
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
        ids = requirement_ids(item)
        for rid in ids:
            if rid not in known:
                raise pytest.UsageError(f"{item.nodeid}: unknown requirement {rid}")
        if ids:  # every phase's report carries them (and a JUnit property, once)
            item.user_properties.append(("requirements", " ".join(ids)))
    wanted = config.getoption("--abp-requirement")
    if wanted:
        keep = [item for item in items if selects(wanted, requirement_ids(item))]
        dropped = [item for item in items if item not in keep]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep


def transcript_of(item: pytest.Item) -> Transcript | None:
    """The test's transcript: ``item.abp_session.transcript`` (the ``abp``
    fixture sets it) or ``item.abp_transcript`` (for other suites)."""
    session = getattr(item, "abp_session", None)
    transcript = getattr(session, "transcript", None) or getattr(item, "abp_transcript", None)
    return transcript if isinstance(transcript, Transcript) else None


def failure_text(
    excinfo: pytest.ExceptionInfo[BaseException], requirement_ids: Sequence[str] = ()
) -> tuple[str, str | None]:
    """A failure in a few lines, and the requirement it names, if any. A send
    or read that failed outside the session's judging (a ``WireError``) is
    reported as what it means on the wire, under the test's first requirement."""
    exc = excinfo.value
    if isinstance(exc, WireError) and requirement_ids:
        exc = RequirementFailed(requirement_ids[0], on_the_wire(exc))
    elif isinstance(exc, LineOverflow):  # the framing rule of the service tested
        counter = any(rid.startswith("ABP-COUNTER") for rid in requirement_ids)
        framing = "ABP-COUNTER-4" if counter else "ABP-FRAME-1"
        exc = RequirementFailed(framing, f"the answer is not one line: {exc}")
    if isinstance(exc, RequirementFailed):
        return exc.render(), exc.requirement_id
    entry = excinfo.traceback[-1] if excinfo.traceback else None
    where = f" (at {entry.path}:{entry.lineno + 1})" if entry is not None else ""
    return excinfo.exconly().strip() + where, None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Puts into ``report.user_properties`` what the reports need: on a failed
    phase the failure text and the failed requirement; on teardown (where the
    transcript is complete) the transcript, rendered and as JSON records."""
    report = yield
    transcript = transcript_of(item)
    if report.failed and call.excinfo is not None:
        text, failed_id = failure_text(call.excinfo, requirement_ids(item))
        report.user_properties.append(("failure", text))
        if failed_id:
            report.user_properties.append(("failed_requirement", failed_id))
        if transcript is not None and transcript.records:  # shown under the failure
            report.sections.append(("ABP transcript", transcript.render()))
    if call.when == "teardown" and transcript is not None and transcript.records:
        report.user_properties.append(("transcript", transcript.render()))
        report.user_properties.append(
            ("transcript_records", json.dumps(transcript.as_json(), ensure_ascii=False))
        )
    return report
