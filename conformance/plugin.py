"""The pytest plugin: target options, the ``requirement`` marker, fixtures.

Registered through the ``pytest11`` entry point, so ``pytest --abp-server
HOST:PORT --pyargs conformance.suites.server`` works as well as ``conformance
run``. Without ``--abp-server`` it stays inert (the project's own tests load it
too).

What reaches the reports, through ``report.user_properties`` (which xdist
carries to the controlling process): ``requirements`` (the marker's IDs, on
every phase), ``failure`` and ``failed_requirement`` (on a failed phase), and,
on teardown, ``transcript`` and ``transcript_records`` (JSON) of the test's
``abp`` session (``request.node.abp_session``) or of
``request.node.abp_transcript``.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator

import pytest

from conformance.harness.timing import TIMEOUT
from conformance.harness.wire import Transcript
from conformance.judging.session import FRAMINGS, SERVICES, ServerSession, ServerTarget
from conformance.judging.verdict import RequirementFailed
from protocol import requirements
from protocol.address import parse_address

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
    group.addoption("--abp-timeout", type=float, default=TIMEOUT, metavar="S")
    group.addoption("--abp-seed", type=int, default=0, metavar="N")
    group.addoption("--abp-fuzz-examples", type=int, default=50, metavar="N")
    group.addoption("--abp-idle-timeout", type=float, default=None, metavar="S")
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


def selects(wanted: list[str], ids: list[str]) -> bool:
    """``--abp-requirement`` matching: an exact ID, or a prefix such as ``ABP-FRAME``."""
    return any(rid == w or rid.startswith(w.rstrip("-") + "-") for w in wanted for rid in ids)


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


def failure_text(excinfo: pytest.ExceptionInfo[BaseException]) -> tuple[str, str | None]:
    """A failure in a few lines, and the requirement it names, if any."""
    exc = excinfo.value
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
        text, failed_id = failure_text(call.excinfo)
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
