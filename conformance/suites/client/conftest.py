"""Fixtures of the client suite: the client under test and the scripted servers.

``--abp-client TEMPLATE`` (argv contract) and ``--abp-client-menu TEMPLATE``
(menu contract) name the client, ``--abp-listen`` where a menu client without
``{port}`` connects (the plugin declares them; ``conformance run --client``,
``--client-menu`` and ``--listen`` pass them). Tests that take the ``client``
fixture run once per contract given; tests that only make sense for one
contract take ``argv_client`` or ``menu_client`` and are skipped, with the
reason, for the other. A client run is killed at ``2 x --abp-timeout``
seconds (default 10 s).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from conformance.harness.process import free_port
from conformance.harness.timing import TIMEOUT
from conformance.harness.wire import Transcript
from conformance.suites.client.contracts import (
    ArgvClient,
    ClientUnderTest,
    MenuClient,
    address_lock,
    make_client,
)
from conformance.suites.client.scenarios import SPEC, Book, Scenario
from conformance.suites.client.scripted import ScriptedServer
from protocol import DEFAULT_HOST, DEFAULT_PORT
from protocol.address import parse_address

OPTION = {"argv": "--abp-client", "menu": "--abp-client-menu"}
CLI_OPTION = {"argv": "--client", "menu": "--client-menu"}


def _option(config: pytest.Config, name: str) -> str | None:
    try:
        value = config.getoption(name)
    except ValueError:
        return None
    return str(value) if value else None


def _listen(config: pytest.Config) -> tuple[str, int]:
    text = _option(config, "--abp-listen")
    if not text:
        return (DEFAULT_HOST, DEFAULT_PORT)
    try:
        return parse_address(text)
    except ValueError as exc:
        raise pytest.UsageError(f"--listen: {exc}") from None


def _deadline(config: pytest.Config) -> float:
    try:
        timeout = float(config.getoption("--abp-timeout"))
    except (ValueError, TypeError):
        timeout = TIMEOUT
    return 2 * timeout


def pytest_configure(config: pytest.Config) -> None:
    """A template that cannot be used stops the run before any test (usage error)."""
    for contract, option in OPTION.items():
        template = _option(config, option)
        if template:
            try:
                make_client(contract, template, deadline=1.0, listen=_listen(config))
            except (ValueError, KeyError) as exc:
                why = exc.args[0] if exc.args else exc
                raise pytest.UsageError(f"{CLI_OPTION[contract]} {template!r}: {why}") from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``client`` runs once per contract given (argv when none is, to skip with the reason)."""
    if "client" in metafunc.fixturenames:
        config = metafunc.config
        given = [c for c, option in OPTION.items() if _option(config, option)] or ["argv"]
        metafunc.parametrize("client", given, indirect=True)


def _client(config: pytest.Config, contract: str, reason: str) -> ClientUnderTest:
    template = _option(config, OPTION[contract])
    if not template:
        pytest.skip(reason)
    return make_client(contract, template, deadline=_deadline(config), listen=_listen(config))


@pytest.fixture
def client(request: pytest.FixtureRequest, pytestconfig: pytest.Config) -> ClientUnderTest:
    contract = str(request.param)
    return _client(pytestconfig, contract, f"no {CLI_OPTION[contract]} TEMPLATE given")


@pytest.fixture
def argv_client(pytestconfig: pytest.Config) -> ArgvClient:
    client = _client(
        pytestconfig, "argv", "applies to the argv contract only (give --client TEMPLATE)"
    )
    assert isinstance(client, ArgvClient)
    return client


@pytest.fixture
def menu_client(pytestconfig: pytest.Config) -> MenuClient:
    client = _client(
        pytestconfig, "menu", "applies to the menu contract only (give --client-menu TEMPLATE)"
    )
    assert isinstance(client, MenuClient)
    return client


@pytest.fixture
def transcript(request: pytest.FixtureRequest) -> Transcript:
    """The test's transcript (what the client sent, what the scripted server
    answered, how the client ended); the plugin puts it in the reports."""
    transcript = Transcript()
    request.node.abp_transcript = transcript
    return transcript


Serve = Callable[..., ScriptedServer]


@pytest.fixture
def serve(transcript: Transcript, pytestconfig: pytest.Config) -> Iterator[Serve]:
    """``serve(client, scenario=..., book=..., hosts=...)``: a scripted server the
    client will reach. On a fixed --listen address tests take turns (lock)."""
    with contextlib.ExitStack() as stack:

        def start(
            client: ClientUnderTest,
            *,
            scenario: Scenario = SPEC,
            book: Book | None = None,
            hosts: tuple[str, ...] | None = None,
        ) -> ScriptedServer:
            port = client.listen_port()
            if port:
                stack.enter_context(address_lock(client.listen[0], port))
            server = ScriptedServer(
                hosts=hosts or (client.listen[0],),
                port=port,
                scenario=scenario,
                book=book,
                transcript=transcript,
                timeout=_deadline(pytestconfig) / 2,
            )
            return stack.enter_context(server)

        yield start


@pytest.fixture
def refused() -> Iterator[Callable[[ClientUnderTest], tuple[str, int]]]:
    """``refused(client)``: an address where nothing listens (connection refused).
    On a fixed --listen address the test holds it, so no other test listens there."""
    with contextlib.ExitStack() as stack:

        def address(client: ClientUnderTest) -> tuple[str, int]:
            host, port = client.listen[0], client.listen_port()
            if port:
                stack.enter_context(address_lock(host, port))
                return host, port
            return host, free_port(host)

        yield address
