"""``conformance run`` and ``conformance list``: pytest, in this process.

The suite is an ordinary pytest package (``conformance.suites.server`` and
friends) run through ``pytest.main`` with the bundled ``pytest.ini`` (so the
settings of whatever project the user stands in do not apply), xdist for the
workers, pytest's own output switched off (``-p no:terminal``), and a
``ResultCollector`` that turns every report into a ``TestRecord``.

Errors the user can fix (bad arguments, a target that cannot be reached, a
server command that does not start) are ``UsageProblem``: one line, exit 2.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import shlex
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import pytest

from conformance.harness import probe as framing
from conformance.harness.process import (
    ServerOutlived,
    ServerProcess,
    ServerStartError,
    reference_server_command,
)
from conformance.harness.timing import EMBEDDED_IDLE_TIMEOUT, TIMEOUT, UNSOLICITED, budget
from conformance.harness.tls import (
    TlsSettings,
    TlsSetupError,
    describe,
    split_target,
    throwaway_pki,
)
from conformance.harness.wire import WireError
from conformance.plugin import STOP_RUN, SilenceBreaker
from conformance.reports import EXIT_INTERNAL, EXIT_USAGE, ResultCollector, RunResult
from conformance.reports.model import selects
from protocol import requirements
from protocol.address import format_address, parse_address

#: The connection limit of the embedded reference server (``conformance run``
#: with no target), for one address as for all, told to the suite: between
#: the 100 connections ABP-CONN-4 asks for and the suite's crowd of 200, so
#: the busy refusal (ABP-CONN-8) is met in the main job too.
EMBEDDED_MAX_CONNS = 160

#: which test package judges which service, and whose requirements it covers
SUITES = {
    "abp": ("conformance.suites.server", ("server",)),
    "counter": ("conformance.suites.counter", ("counter",)),
    "client": ("conformance.suites.client", ("client",)),
}
PYTEST_INI = Path(__file__).with_name("pytest.ini")
NO_AUTOLOAD = "PYTEST_DISABLE_PLUGIN_AUTOLOAD"
HYPOTHESIS_DIR = "HYPOTHESIS_STORAGE_DIRECTORY"


class UsageProblem(Exception):
    """The user's to fix: exit 2, one line."""


class SuiteProblem(Exception):
    """The suite's own fault: exit 3; ``details`` are shown with -v."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


@dataclass
class RunOptions:
    service: str = "abp"  # abp, counter or client
    server: str | None = None
    server_cmd: str | None = None
    framing: str = "auto"
    workers: int = 1
    requirements: list[str] = field(default_factory=list)
    keyword: str | None = None
    timeout: float = TIMEOUT
    seed: int = 0
    fuzz_examples: int | None = None
    idle_timeout: float | None = None
    max_conns: int | None = None  # the server's limit, as one address meets it
    quiet_period: float | None = None  # the server's, when not the spec's default
    strict: bool = False
    verbose: bool = False
    client: str | None = None
    client_menu: str | None = None
    listen: str | None = None
    maxfail: int | None = None  # stop after this many failing tests
    tests: list[str] = field(default_factory=list)  # node ids, as the reports show them
    tls: bool = False  # speak TLS to the target (implied by a tls:// --server)
    ca: str | None = None  # TLS: the CA file to trust
    cert: str | None = None  # TLS: the suite's client certificate
    key: str | None = None  # TLS: its key
    tls_client_auth: bool = False  # TLS: the target verifies client certificates


def suite_dir(package: str) -> Path:
    """The directory of an installed test package (wherever it is installed)."""
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError as exc:
        if exc.name and package.startswith(exc.name):
            raise SuiteProblem(f"{package} is not part of this installation") from None
        raise
    return Path(next(iter(module.__path__)))


def check_keyword(expression: str | None) -> None:
    """A wrong ``-k`` would only surface inside the workers, as an internal error."""
    if not expression:
        return
    try:
        from _pytest.mark.expression import Expression
    except ImportError:  # pytest moved it: the workers will complain instead
        return
    try:
        Expression.compile(expression)
    except Exception as exc:  # ParseError in older pytests, SyntaxError in newer ones
        why = getattr(exc, "msg", None) or getattr(exc, "message", None) or exc
        raise UsageProblem(f"-k {expression!r}: {why}") from None


def check_requirement_selection(wanted: Sequence[str]) -> None:
    known = list(requirements.catalogue())
    for rid in wanted:
        if not selects([rid], known):
            raise UsageProblem(f"unknown requirement {rid!r} (see 'conformance list')")


#: the only pytest plugins a run loads: autoloading is off, so that neither the
#: user's other plugins (pytest-randomly reseeding hypothesis...) nor pytest's
#: assertion rewriting of every module of every plugin's distribution (seconds
#: per process when bytecode is not cached) weigh on the run
PLUGINS = ("xdist.plugin", "_hypothesis_pytestplugin", "conformance.plugin")


def available_plugins() -> list[str]:
    return [plugin for plugin in PLUGINS if importlib.util.find_spec(plugin) is not None]


def base_args(test_dir: Path, workers: int) -> list[str]:
    args = [
        "-c", str(PYTEST_INI),
        "--rootdir", str(test_dir.parents[2]),
        "-p", "no:terminal",
        "-p", "no:cacheprovider",
    ]  # fmt: skip
    for plugin in available_plugins():
        args += ["-p", plugin]
    if workers >= 1:
        args += ["-n", str(workers)]
    return args


@contextlib.contextmanager
def quiet_pytest() -> Iterator[io.StringIO]:
    """pytest in a controlled environment (inherited by the xdist workers): no
    ``PYTEST_ADDOPTS``, no plugin autoloading, hypothesis's files in a scratch
    directory; whatever pytest itself prints goes to a buffer (shown with -v)."""
    buffer = io.StringIO()
    names = ("PYTEST_ADDOPTS", NO_AUTOLOAD, HYPOTHESIS_DIR)
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    with tempfile.TemporaryDirectory(prefix="abp-conformance-hypothesis-") as scratch:
        os.environ[NO_AUTOLOAD] = "1"
        os.environ[HYPOTHESIS_DIR] = scratch
        try:
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                yield buffer
        finally:
            for name in names:
                os.environ.pop(name, None)
            os.environ.update(saved)


def _show(address: tuple[str, int]) -> str:
    return format_address(*address)


def _reachable(host: str, port: int, timeout: float, tls: TlsSettings | None = None) -> None:
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise UsageProblem(f"cannot connect to {_show((host, port))}: {reason}") from None
    with sock:
        if tls is None:
            return
        where = f"tls://{_show((host, port))}"
        try:
            session = tls.wrap(sock, host)
        except OSError as exc:  # ssl.SSLError included
            raise UsageProblem(
                f"no TLS session with {where}: {describe(exc)}"
                " (is it a TLS port? is --ca the CA that signed its certificate?)"
            ) from None
        with session:  # TLS 1.3: a refused client certificate is known just after
            session.settimeout(budget(UNSOLICITED, timeout))
            try:
                closed = session.recv(1) == b""
            except TimeoutError:
                return  # silence: as an ABP/1 server should be before a request
            except OSError as exc:
                why = describe(exc)
            else:
                if not closed:
                    return  # bytes before any request: the suite's tests judge that
                why = "the server closed the session at once"
            raise UsageProblem(
                f"{where} refused the suite after the handshake: {why}"
                " (does it want a client certificate? --cert FILE --key FILE)"
            )


def tls_options(options: RunOptions, tls: bool) -> TlsSettings | None:
    """The suite's TLS settings from --ca/--cert/--key/--tls-client-auth, for a
    TLS target; None for a plain one. The embedded server makes its own."""
    given = [
        flag
        for flag, value in (
            ("--ca", options.ca),
            ("--cert", options.cert),
            ("--key", options.key),
            ("--tls-client-auth", options.tls_client_auth),
        )
        if value
    ]
    if not tls:
        if given:
            raise UsageProblem(f"{given[0]} needs a TLS target (--server tls://HOST:PORT or --tls)")
        return None
    if options.server is None and options.server_cmd is None:
        if set(given) - {"--tls-client-auth"}:
            raise UsageProblem(
                f"{given[0]}: the embedded server over TLS makes its own throw-away certificates"
            )
        return None
    settings = TlsSettings(
        ca=options.ca, cert=options.cert, key=options.key, client_auth=options.tls_client_auth
    )
    try:
        settings.check()
    except TlsSetupError as exc:
        raise UsageProblem(str(exc)) from None
    return settings


@dataclass(frozen=True)
class Server:
    """The target of a run, as ``server_under_test`` found or started it."""

    host: str
    port: int
    template: str | None  # the command for private instances
    process: ServerProcess | None  # the shared instance, when the suite started it
    tls: TlsSettings | None


@contextlib.contextmanager
def server_under_test(options: RunOptions, out: TextIO) -> Iterator[Server]:
    """host, port, the command template for private instances, the shared
    process when the suite started it, and how to speak TLS to it."""
    if options.server is not None:
        address, tls = split_target(options.server)
        try:
            host, port = parse_address(address)
        except ValueError as exc:
            raise UsageProblem(f"--server: {exc}") from None
        settings = tls_options(options, tls or options.tls)
        _reachable(host, port, budget(TIMEOUT, options.timeout), settings)
        yield Server(host, port, None, None, settings)
        return
    settings = tls_options(options, options.tls)
    if options.server_cmd is not None:
        template = options.server_cmd
        if "{port}" not in template:
            raise UsageProblem("--server-cmd needs a {port} placeholder for the port to listen on")
        with _server_process(template, out, settings) as server:
            yield server
        return
    with tempfile.TemporaryDirectory(prefix="abp-conformance-tls-") as pki_dir:
        tls_flags: list[str] = []
        if options.tls:
            try:
                tls_flags, settings = throwaway_pki(pki_dir, client_auth=options.tls_client_auth)
            except TlsSetupError as exc:
                raise UsageProblem(str(exc)) from None
        idle = options.idle_timeout or EMBEDDED_IDLE_TIMEOUT
        template = shlex.join(
            reference_server_command(
                "--service", "counter" if options.service == "counter" else "abp",
                "--db", "{tmpdir}/book.sqlite3",
                "--idle-timeout", f"{idle:g}",
                "--max-conns", str(options.max_conns or EMBEDDED_MAX_CONNS),
                "--max-conns-per-ip", str(options.max_conns or EMBEDDED_MAX_CONNS),
                *tls_flags,
            )
        )  # fmt: skip
        with _server_process(template, out, settings) as server:
            yield server


@contextlib.contextmanager
def _server_process(template: str, out: TextIO, tls: TlsSettings | None) -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="abp-conformance-") as tmpdir:
        process = ServerProcess(template, tmpdir=tmpdir)  # {tmpdir}: the shared instance's
        try:
            argv = process.argv()
        except (KeyError, ValueError) as exc:
            raise UsageProblem(f"--server-cmd: {exc.args[0] if exc.args else exc}") from None
        out.write(f"starting the server: {shlex.join(argv)}\n")
        try:
            process.start()
        except (ServerStartError, ServerOutlived) as exc:
            with contextlib.suppress(ServerOutlived):
                process.close()
            raise UsageProblem(_one_line(str(exc))) from None
        try:
            if tls is not None:
                _reachable(process.host, process.port, TIMEOUT, tls)
            yield Server(process.host, process.port, template, process, tls)
        except BaseException:
            with contextlib.suppress(ServerOutlived):  # the first problem is the one to show
                process.close()
            raise
        try:
            process.close()
        except ServerOutlived as exc:
            raise UsageProblem(str(exc)) from None


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    if len(lines) > 1 and "--- server stderr ---" in lines:
        tail = [line for line in lines[lines.index("--- server stderr ---") + 1 :] if line.strip()]
        return lines[0] + (f"; its last words: {tail[-1].strip()}" if tail else "")
    return lines[0] if lines else text


def _client_args(options: RunOptions, target: dict[str, Any], out: TextIO) -> list[str]:
    args: list[str] = []
    for flag, value in (
        ("--abp-client", options.client),
        ("--abp-client-menu", options.client_menu),
        ("--abp-listen", options.listen),
    ):
        if value is not None:
            args += [flag, value]
            target[flag.removeprefix("--abp-")] = value
    out.write(f"ABP/1 conformance: client {options.client or options.client_menu}\n")
    return args


def _server_args(
    options: RunOptions,
    target: dict[str, Any],
    out: TextIO,
    server: Server,
) -> list[str]:
    host, port, template, process = server.host, server.port, server.template, server.process
    address = ("tls://" if server.tls else "") + _show((host, port))
    out.write(f"ABP/1 conformance: {options.service} server at {address}\n")
    chosen, how = options.framing, "given with --framing"
    try:  # whatever the framing, a target that is no ABP/1 server stops here (exit 2)
        found = framing.detect(
            host, port, service=options.service, timeout=options.timeout, tls=server.tls
        )
    except WireError as exc:
        raise UsageProblem(str(exc)) from None
    if options.framing == "auto":
        chosen, how = found.framing or framing.LINE, found.reason
        out.write(found.describe() + "\n")
    embedded = process is not None and options.server_cmd is None
    idle = options.idle_timeout or (EMBEDDED_IDLE_TIMEOUT if embedded else None)
    args = ["--abp-server", address, "--abp-service", options.service, "--abp-framing", chosen]
    if template is not None:
        args += ["--abp-server-cmd", template]
    if idle is not None:
        args += ["--abp-idle-timeout", f"{idle:g}"]
    limit = options.max_conns or (EMBEDDED_MAX_CONNS if embedded else None)
    if limit is not None:
        args += ["--abp-max-conns", str(limit)]
    if server.tls is not None:
        for flag, value in (
            ("--abp-ca", server.tls.ca),
            ("--abp-cert", server.tls.cert),
            ("--abp-key", server.tls.key),
        ):
            if value is not None:
                args += [flag, value]
        if server.tls.client_auth:
            args.append("--abp-tls-client-auth")
    if options.quiet_period is not None:
        args += ["--abp-quiet-period", f"{options.quiet_period:g}"]
    target.update(
        address=address,
        service=options.service,
        framing=chosen,
        framing_reason=how,
        server_cmd=template,
        embedded=embedded,
        tls=server.tls is not None,
    )
    return args


def _common_args(options: RunOptions) -> list[str]:
    args = ["--abp-timeout", f"{options.timeout:g}", "--abp-seed", str(options.seed)]
    if "_hypothesis_pytestplugin" in available_plugins():
        args += ["--hypothesis-seed", str(options.seed)]
    if options.fuzz_examples is not None:
        args += ["--abp-fuzz-examples", str(options.fuzz_examples)]
    for rid in options.requirements:
        args += ["--abp-requirement", rid]
    if options.keyword:
        args += ["-k", options.keyword]
    if options.maxfail:
        args += ["--maxfail", str(options.maxfail)]
    return args


def test_paths(test_dir: Path, tests: Sequence[str]) -> list[str]:
    """``--test`` ids (relative to the rootdir) as pytest arguments, or the suite."""
    if not tests:
        return [str(test_dir)]
    root = test_dir.parents[2]
    paths = []
    for nodeid in tests:
        path, sep, rest = nodeid.partition("::")
        where = (root / path).resolve()
        if not where.is_relative_to(test_dir.resolve()) or not where.is_file():
            raise UsageProblem(f"--test {nodeid}: no such test file in {test_dir.name}'s suite")
        paths.append(str(where) + sep + rest)
    return paths


def run(options: RunOptions, out: TextIO) -> tuple[int, RunResult | None, str]:
    """Run the suite; returns (exit status, the result, pytest's own output)."""
    check_requirement_selection(options.requirements)
    check_keyword(options.keyword)
    package, roles = SUITES[options.service]
    test_dir = suite_dir(package)
    paths = test_paths(test_dir, options.tests)  # before any server starts
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    clock = time.monotonic()
    target: dict[str, Any] = {"suite": package}
    with contextlib.ExitStack() as stack:
        if options.service == "client":
            extra = _client_args(options, target, out)
            process = None
        else:
            server = stack.enter_context(server_under_test(options, out))
            extra = _server_args(options, target, out, server)
            process = server.process
        target.update(seed=options.seed, workers=options.workers)
        extra += _common_args(options)
        code, collector, output, stopped = _pytest(test_dir, options.workers, extra, out, paths)
        if stopped:  # a test found the target unfit to judge (ServerOutlived...)
            raise UsageProblem(stopped)
        if process is not None and not process.running:
            status = process.process.returncode if process.process else None
            out.write(f"note: the server process exited during the run (status {status})\n")
            target["server_exit_status"] = status

    result = RunResult(
        collector.records,
        target=target,
        started=started,
        duration=time.monotonic() - clock,
        strict=options.strict,
        roles=roles,
        complete=not (options.requirements or options.keyword),
        selected=tuple(options.requirements),
        warnings=collector.warnings,
        stopped_early=collector.stopped_early,
    )
    try:
        return _exit_status(code, collector, result, options, output), result, output
    except SuiteProblem as exc:
        details = "\n".join([*collector.collection_errors, *collector.internal_errors, output])
        raise SuiteProblem(str(exc), details) from None


class _RunStopper:
    """A pytest plugin object: the first reason a test gave to stop the run
    (``reason``), and the plugin's own reason to stop it early (``silenced``)."""

    def __init__(self) -> None:
        self.reason = ""
        self.config: pytest.Config | None = None

    def pytest_configure(self, config: pytest.Config) -> None:
        self.config = config

    @property
    def silenced(self) -> str:
        breaker = (
            None
            if self.config is None
            else self.config.pluginmanager.get_plugin(SilenceBreaker.NAME)
        )
        return breaker.reason if isinstance(breaker, SilenceBreaker) else ""

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == STOP_RUN and not self.reason:
                self.reason = str(value)


def _pytest(
    test_dir: Path, workers: int, extra: list[str], out: TextIO, paths: Sequence[str] = ()
) -> tuple[int, ResultCollector, str, str]:
    """pytest's exit status, the results, its own output, and why a test
    stopped the run ("" when none did)."""
    from conformance.reports.console import Progress

    progress: Progress | None = None
    collector = ResultCollector(lambda record: progress.update(record) if progress else None)
    progress = Progress(out, lambda: collector.total)
    stopper = _RunStopper()
    args = [*base_args(test_dir, workers), *extra, *(paths or [str(test_dir)])]
    with quiet_pytest() as buffer:
        code = int(pytest.main(args, plugins=[collector, stopper]))
    progress.finish()
    if stopper.silenced and not stopper.reason:  # a verdict on what ran, not an interruption
        out.write(f"note: {stopper.silenced}\n")
        collector.interrupted = False
    return code, collector, buffer.getvalue(), stopper.reason


def _exit_status(
    code: int, collector: ResultCollector, result: RunResult, options: RunOptions, output: str
) -> int:
    if collector.interrupted:
        raise KeyboardInterrupt
    if collector.collection_errors:
        where, _, text = collector.collection_errors[0].partition(": ")
        lines = [line for line in text.splitlines() if line.strip()]
        raise SuiteProblem(
            f"{where} failed to load: {lines[-1].removeprefix('E ').strip() if lines else '?'}"
        )
    if code in (pytest.ExitCode.INTERNAL_ERROR,) or collector.internal_errors:
        raise SuiteProblem("pytest stopped with an internal error")
    if code == pytest.ExitCode.USAGE_ERROR:  # e.g. a conftest refused an option's value
        said = [line for line in output.splitlines() if line.startswith("ERROR: ")]
        raise UsageProblem(
            said[0].removeprefix("ERROR: ") if said else "pytest refused the arguments"
        )
    if code == pytest.ExitCode.NO_TESTS_COLLECTED or not result.records:
        if options.requirements or options.keyword:
            raise UsageProblem("no test matches the selection (--requirement / -k)")
        raise SuiteProblem("the suite holds no test")
    return result.exit_code()


# -- conformance list, and the baselines' test entries
def collected_tests(service: str) -> list[str]:
    """Every test id of a suite, as the reports show them (by collecting it)."""
    package, _ = SUITES[service]
    test_dir = suite_dir(package)
    collector = ResultCollector()
    args = [*base_args(test_dir, 0), "--collect-only", str(test_dir)]
    with quiet_pytest():
        code = pytest.main(args, plugins=[collector])
    if collector.collection_errors or code not in (0, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise SuiteProblem(f"the tests of {package} failed to load")
    return [item.nodeid for item in collector.items]


def covering_tests(services: Sequence[str]) -> dict[str, list[str]]:
    """requirement ID -> the test ids that name it, by collecting the suites."""
    covered: dict[str, list[str]] = {}
    for service in services:
        package, _ = SUITES[service]
        try:
            test_dir = suite_dir(package)
        except SuiteProblem:
            continue
        collector = ResultCollector()
        args = [*base_args(test_dir, 0), "--collect-only", str(test_dir)]
        with quiet_pytest():
            code = pytest.main(args, plugins=[collector])
        if collector.collection_errors or code not in (0, pytest.ExitCode.NO_TESTS_COLLECTED):
            raise SuiteProblem(f"the tests of {package} failed to load")
        from conformance.plugin import requirement_ids

        for item in collector.items:
            for rid in requirement_ids(item):
                covered.setdefault(rid, []).append(item.nodeid)
    return covered


def exit_for(exc: BaseException) -> int:
    return EXIT_USAGE if isinstance(exc, UsageProblem) else EXIT_INTERNAL


__all__ = ["RunOptions", "SuiteProblem", "UsageProblem", "covering_tests", "run", "suite_dir"]
