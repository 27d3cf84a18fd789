"""The pytest plugin: target options, the ``requirement`` marker, fixtures.

Registered through the ``pytest11`` entry point, so ``pytest --abp-server
HOST:PORT --pyargs conformance.suites.server`` works as well as ``conformance
run`` (``--abp-server tls://HOST:PORT`` with ``--abp-ca``, ``--abp-cert``,
``--abp-key``: the same suite over TLS). Collecting a conformance suite
without its target (``--abp-server``; ``--abp-client`` or ``--abp-client-menu``
for the client suite) is a usage error, so that a CI job that forgets the flag
is not green; any other test (the project's own tests load the plugin too) is
left alone.

What reaches the reports, through ``report.user_properties`` (which xdist
carries to the controlling process): ``requirements`` (the marker's IDs, on
every phase), ``failure`` and ``failed_requirement`` (on a failed phase), and,
on teardown, ``transcript`` and ``transcript_records`` (JSON) of the test's
``abp`` session (``request.node.abp_session``) or of
``request.node.abp_transcript``.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Generator, Iterator, Sequence

import pytest

from conformance.harness.crowd import MAX_MEMBERS
from conformance.harness.lines import LineOverflow
from conformance.harness.process import ServerOutlived
from conformance.harness.sharing import EXCLUSIVE, use_shared_server
from conformance.harness.timing import TIMEOUT, hard_deadline
from conformance.harness.tls import TlsSettings, TlsSetupError, split_target
from conformance.harness.wire import Transcript, WireError
from conformance.judging.session import FRAMINGS, SERVICES, ServerSession, ServerTarget
from conformance.judging.verdict import RequirementFailed, on_the_wire
from conformance.reports.model import selects
from protocol import DEFAULT_QUIET_PERIOD, requirements
from protocol.address import parse_address

MARKER = "requirement"
#: A user property: the reason a test stopped the whole run (its exception's text).
STOP_RUN = "stop_run"
#: A user property: the test failed after a wait that got no byte at all.
MET_SILENCE = "met_silence"
#: After this many tests in a row fail so, the run stops (the server stopped answering).
SILENT_STREAK = 10
#: Exceptions that make every further verdict meaningless: the run stops there.
STOPS_THE_RUN: tuple[type[BaseException], ...] = (ServerOutlived,)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("abp", "ABP/1 conformance")
    group.addoption(
        "--abp-server",
        metavar="HOST:PORT",
        help="the ABP/1 server under test (tls://HOST:PORT reaches it over TLS); required"
        " to run conformance.suites.server or conformance.suites.counter",
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
    group.addoption(
        "--abp-service",
        choices=SERVICES,
        default="abp",
        help="the service the server runs: abp (the address book) or counter (default: abp)",
    )
    group.addoption(
        "--abp-framing",
        choices=FRAMINGS,
        default="line",
        help="the framing the server handles: line (ABP/1) or legacy (the tutorial's, no LF)"
        " (default: line)",
    )
    group.addoption(
        "--abp-timeout",
        type=float,
        default=TIMEOUT,
        metavar="S",
        help=f"bound on every wait for an answer, in seconds (default: {TIMEOUT:g})",
    )
    group.addoption(
        "--abp-seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the generated names and fuzzing (default: 0)",
    )
    group.addoption(
        "--abp-fuzz-examples",
        type=int,
        default=50,
        metavar="N",
        help="examples per fuzz test (default: 50)",
    )
    group.addoption(
        "--abp-idle-timeout",
        type=float,
        default=None,
        metavar="S",
        help="the idle timeout the server was started with; unlocks the idle-timeout test",
    )
    group.addoption(
        "--abp-max-conns",
        type=int,
        default=None,
        metavar="N",
        help="the server's connection limit as one client address meets it; unlocks the"
        " busy-refusal test (ABP-CONN-8)",
    )
    group.addoption(
        "--abp-quiet-period",
        type=float,
        default=DEFAULT_QUIET_PERIOD,
        metavar="S",
        help="the server's quiet period, which ends an unterminated request"
        f" (default: {DEFAULT_QUIET_PERIOD:g})",
    )
    group.addoption(
        "--abp-test-deadline",
        type=float,
        default=None,
        metavar="S",
        help="the hard deadline of one test, in seconds (default: 60 + 10 x --abp-timeout"
        " + --abp-idle-timeout)",
    )
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


class SilenceBreaker:
    """In the process that collects the reports: stops the run once
    ``SILENT_STREAK`` tests in a row have failed on silence, so that a server
    that stopped answering costs a few timeouts, not one per remaining test.
    ``reason`` says why it stopped ("" while it has not)."""

    NAME = "abp-silence-breaker"

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.streak = 0
        self.reason = ""

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" or self.reason:
            return
        if not (report.failed and any(key == MET_SILENCE for key, _ in report.user_properties)):
            self.streak = 0
            return
        self.streak += 1
        if self.streak >= SILENT_STREAK:
            timeout = self.config.getoption("--abp-timeout")
            self.reason = (
                f"the server stopped answering: {self.streak} tests in a row got no answer"
                f" within {timeout:g}s, so the run stopped there"
            )
            dsession = self.config.pluginmanager.get_plugin("dsession")  # xdist's controller
            if dsession is not None:
                dsession.shouldstop = self.reason
            session = getattr(self.config, "_abp_session", None)
            if session is not None:
                session.shouldstop = self.reason


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config._abp_session = session  # type: ignore[attr-defined]


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and not config.pluginmanager.has_plugin(
        SilenceBreaker.NAME
    ):
        config.pluginmanager.register(SilenceBreaker(config), SilenceBreaker.NAME)
    config.addinivalue_line(
        "markers", f"{MARKER}(*ids): the docs/spec.md requirement(s) this test checks"
    )
    config.addinivalue_line(
        "markers", f"{EXCLUSIVE}: the test needs the shared server to itself (harness/sharing.py)"
    )
    if any(config.getoption(o) for o in ("--abp-server", "--abp-client", "--abp-client-menu")):
        # a run against an implementation: examples are not kept between runs
        # (the verdict depends on --abp-seed only), and network latency is no error
        from hypothesis import settings

        settings.register_profile("abp-conformance", database=None, deadline=None)
        settings.load_profile("abp-conformance")
    tls_settings(config)  # a bad TLS option is a usage error before any test
    limit = config.getoption("--abp-max-conns")
    if limit is not None and not 1 <= limit < MAX_MEMBERS:
        raise pytest.UsageError(f"--abp-max-conns must be 1 to {MAX_MEMBERS - 1}: {limit}")


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


#: The suites that judge a server, and the one that judges a client: what each needs.
SUITES_PACKAGE = "conformance.suites."
SERVER_SUITES = ("conformance.suites.server", "conformance.suites.counter")
CLIENT_SUITE = "conformance.suites.client"


def _module_of(item: pytest.Item) -> str:
    module = getattr(item, "module", None)
    return str(getattr(module, "__name__", ""))


def _check_target_given(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A conformance suite collected with nothing to judge is a usage error
    (exit 4), not a run of skips that exits 0; collecting only is fine
    (``conformance list``), and so is any other test (this project's own)."""
    if config.option.collectonly:
        return
    modules = {_module_of(item) for item in items}

    def collected(package: str) -> bool:
        return any(m == package or m.startswith(package + ".") for m in modules)

    if any(collected(p) for p in SERVER_SUITES) and not config.getoption("--abp-server"):
        raise pytest.UsageError(
            "the ABP/1 server suite needs --abp-server HOST:PORT (the server under test);"
            " see the 'ABP/1 conformance' options in pytest --help"
        )
    wants_client = ("--abp-client", "--abp-client-menu")
    if collected(CLIENT_SUITE) and not any(config.getoption(o) for o in wants_client):
        raise pytest.UsageError(
            "the ABP/1 client suite needs --abp-client TEMPLATE or --abp-client-menu TEMPLATE"
            " (the client under test); see the 'ABP/1 conformance' options in pytest --help"
        )


@pytest.fixture(scope="session")
def abp_target(pytestconfig: pytest.Config) -> ServerTarget:
    address = pytestconfig.getoption("--abp-server")
    if not address:
        pytest.skip("no --abp-server HOST:PORT given")
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
        max_conns=pytestconfig.getoption("--abp-max-conns"),
        tls=tls_settings(pytestconfig),
        quiet_period=pytestconfig.getoption("--abp-quiet-period"),
    )


@pytest.fixture(autouse=True)
def _abp_shared_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """A server-suite test holds the shared server, alone if it is marked
    ``exclusive``, among the run's xdist workers (``harness/sharing.py``);
    set up before the ``abp`` fixture, so it outlasts that test's connections."""
    item = request.node
    if not any(_module_of(item).startswith(p) for p in SERVER_SUITES):
        yield
        return
    config = request.config
    workers = hasattr(config, "workerinput")
    directory = tmp_path_factory.getbasetemp().parent if workers else None
    # another worker's test ends by its hard deadline (and a teardown): twice that
    wait = 2 * hard_deadline(
        config.getoption("--abp-timeout"), config.getoption("--abp-idle-timeout")
    )
    exclusive = item.get_closest_marker(EXCLUSIVE) is not None
    with use_shared_server(directory, exclusive=exclusive, wait=wait):
        yield


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
    _check_target_given(config, items)
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


class TestDeadlineExceeded(BaseException):
    """A test ran past its hard deadline (``timing.hard_deadline``). A
    ``BaseException``, so that neither the test's own handlers nor
    hypothesis's shrinking catch it and go on."""

    __test__ = False  # not a test class, whatever its name


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Every test of a conformance suite under a hard deadline, by SIGALRM (a blocking receive is
    interrupted too); where there is no SIGALRM or the test does not run in
    the main thread, the per-wait timeouts are the only bound. Only the
    suites' tests: any other test the plugin is loaded beside (this project's
    own, which run whole suites in subprocesses under their own timeouts) is
    left alone, so a deadline sized for one conformance test never cuts one
    of them short."""
    config = item.config
    if not _module_of(item).startswith(SUITES_PACKAGE):
        return (yield)
    seconds = config.getoption("--abp-test-deadline") or hard_deadline(
        config.getoption("--abp-timeout"), config.getoption("--abp-idle-timeout")
    )
    if (
        not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        return (yield)

    def expire(signum: int, frame: object) -> None:
        raise TestDeadlineExceeded(f"the test ran past its hard deadline of {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Puts into ``report.user_properties`` what the reports need: on a failed
    phase the failure text and the failed requirement (and ``stop_run``
    when the exception makes the rest of the run meaningless); on teardown (where the
    transcript is complete) the transcript, rendered and as JSON records."""
    report = yield
    transcript = transcript_of(item)
    if call.excinfo is not None and isinstance(call.excinfo.value, STOPS_THE_RUN):
        reason = str(call.excinfo.value)
        report.user_properties.append((STOP_RUN, reason))
        item.session.shouldstop = reason  # xdist passes it on to the controller
    if report.failed and getattr(getattr(item, "abp_session", None), "met_silence", False):
        report.user_properties.append((MET_SILENCE, "1"))
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
