"""abp-client against the reference server and the tutorial's address-book
server: the argv contract (ABP-CLIENT-1 .. -4), the menu contract (ABP-CLIENT-5
.. -7), exact round trips (ABP-REQ-12, ABP-RESP-2, ABP-RESP-6), --trace and
--legacy. The client runs as a real subprocess, except for the property test,
which drives ``reference_client.Session`` in-process over real sockets.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import client_process
import pytest
from hypothesis import HealthCheck, given, settings

from conformance.harness.process import ServerProcess, reference_server_command
from protocol import Add, Error, Find, Ok, Remove, strategies
from reference_client import Address, AddressError, Session, parse_address, resolve_address


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("client-book") / "book.sqlite3"
    with ServerProcess(reference_server_command("--db", str(db))) as process:
        yield process


def run_client(
    server: ServerProcess, *args: str, stdin: str = "", timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    address = f"127.0.0.1:{server.port}"
    return client_process.run_client("--server", address, *args, stdin=stdin, timeout=timeout)


def test_add_find_remove(server: ServerProcess) -> None:
    added = run_client(server, "add", "alice", "1 High St, Leeds, 0113")
    assert (added.returncode, added.stderr) == (0, "")
    assert added.stdout.strip()  # "OK" or the server's text after "OK: "
    found = run_client(server, "fnd", "alice")
    assert (found.returncode, found.stdout, found.stderr) == (0, "1 High St, Leeds, 0113\n", "")
    removed = run_client(server, "rem", "alice")
    assert (removed.returncode, removed.stderr) == (0, "")
    gone = run_client(server, "fnd", "alice")
    assert (gone.returncode, gone.stdout, gone.stderr) == (1, "", "ERROR: No entry for alice\n")


def test_remove_missing_is_exit_1(server: ServerProcess) -> None:
    result = run_client(server, "rem", "nobody-here")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "ERROR: No entry for nobody-here\n"


def test_add_replaces_and_empty_entry(server: ServerProcess) -> None:
    assert run_client(server, "add", "carol", "old").returncode == 0
    assert run_client(server, "add", "carol", "new").returncode == 0
    assert run_client(server, "fnd", "carol").stdout == "new\n"
    assert run_client(server, "add", "carol").returncode == 0  # no ENTRY: empty entry
    result = run_client(server, "fnd", "carol")
    assert (result.returncode, result.stdout) == (0, "\n")


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        ("a:b", "x:y,z"),
        ("Zoë", "1, Rue de l'Église: Paris, +33 1 23"),
        ("🐍 python", "🎉,🎊:🎈"),
        ("東京", "東京都千代田区 \t 100-0001"),
        ("  spaced  ", "  leading and trailing  "),
        ("Case", "upper"),
        ("case", "lower"),
        ("-dash", "--also-dash"),
        ("bidi\u202e", "zero\u200bwidth \u2028 \x85 \ufeff"),
        ("astral\U0010fffd", ""),
    ],
)
def test_unicode_round_trip_exactly(server: ServerProcess, name: str, entry: str) -> None:
    """ABP-REQ-12, ABP-RESP-2: exact, whatever the characters."""
    added = run_client(server, "add", "--", name, entry)
    assert added.returncode == 0, added.stderr
    found = run_client(server, "fnd", "--", name)
    assert (found.returncode, found.stdout) == (0, entry + "\n"), found.stderr


def test_names_are_case_sensitive(server: ServerProcess) -> None:
    assert run_client(server, "add", "Dave", "upper").returncode == 0
    assert run_client(server, "fnd", "dave").returncode == 1
    assert run_client(server, "fnd", "Dave").stdout == "upper\n"


def test_4000_byte_entry_round_trip(server: ServerProcess) -> None:
    entry = ("0123456789,:" * 400)[:4000]
    assert run_client(server, "add", "long", entry).returncode == 0
    result = run_client(server, "fnd", "long")
    assert (result.returncode, result.stdout) == (0, entry + "\n")


def test_invalid_name_is_exit_2(server: ServerProcess) -> None:
    result = run_client(server, "add", "a,b", "x")
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "ABP-REQ-13" in result.stderr
    assert run_client(server, "fnd", "a").returncode == 1  # nothing was stored


def test_shell_add_then_find(server: ServerProcess) -> None:
    """ABP-CLIENT-5, -6: the tutorial's entry format, then find shows it."""
    stdin = "1\nerin\n12\nHigh St\nLeeds\n0113 496 0000\n3\nerin\n2\nerin\n3\nerin\n4\n"
    result = run_client(server, "shell", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert "Enter the name: 12 High St, Leeds, 0113 496 0000\n" in result.stdout
    assert "ERROR: No entry for erin" in result.stdout
    assert result.stdout.startswith("1) Add Entry\n2) Delete Entry\n3) Find Entry\n4) Quit\n")
    assert result.stdout.count("Choose an option[1-4] ") == 5
    assert run_client(server, "fnd", "erin").returncode == 1


def test_trace_against_the_reference_server(server: ServerProcess) -> None:
    assert run_client(server, "add", "frank", "x").returncode == 0
    result = run_client(server, "fnd", "frank", "--trace")
    assert (result.returncode, result.stdout) == (0, "x\n")
    assert '>> 10 bytes "fnd:frank\\n" hex 66 6e 64 3a 66 72 61 6e 6b 0a' in result.stderr
    assert '<< 6 bytes "OK: x\\n" hex 4f 4b 3a 20 78 0a' in result.stderr
    assert "<< = Ok(text='x')" in result.stderr
    assert ">> = Find(name='frank')" in result.stderr


def test_legacy_mode_against_the_reference_server(server: ServerProcess) -> None:
    """The reference server answers unterminated requests after its quiet period."""
    result = run_client(server, "--legacy", "--trace", "add", "gina", "legacy entry")
    assert result.returncode == 0, result.stderr
    assert '>> 21 bytes "add:gina,legacy entry" hex' in result.stderr
    found = run_client(server, "--legacy", "fnd", "gina")
    assert (found.returncode, found.stdout) == (0, "legacy entry\n")


def test_raw_against_the_reference_server(server: ServerProcess) -> None:
    result = run_client(server, "raw", "--half-close", "add:hal,x\\nfnd:hal\\nbogus\\nfnd:\\xff\\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("OK: x\\nERROR: Malformed request\\nERROR: Invalid UTF-8\\n\n"), (
        result.stdout
    )
    assert "the server closed the connection" in result.stderr


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(name=strategies.names(), entry=strategies.entries())
def test_session_round_trip_property(server: ServerProcess, name: str, entry: str) -> None:
    """Any valid NAME and ENTRY come back exactly (in-process client, real server)."""
    session = Session(Address("127.0.0.1", server.port), timeout=5)
    assert isinstance(session.request(Add(name, entry)).answer, Ok)
    assert session.request(Find(name)).answer == Ok(entry)
    assert isinstance(session.request(Remove(name)).answer, Ok)
    assert isinstance(session.request(Find(name)).answer, Error)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:2007", Address("127.0.0.1", 2007)),
        ("localhost:80", Address("localhost", 80)),
        ("[::1]:9", Address("::1", 9)),
        ("[::1]", Address("::1", 2007)),
        ("example.test", Address("example.test", 2007)),
    ],
)
def test_parse_address(text: str, expected: Address) -> None:
    """ABP-TRANSPORT-3: names, IPv4 and bracketed IPv6."""
    assert parse_address(text) == expected
    assert parse_address(str(expected)) == expected


@pytest.mark.parametrize(
    "text", ["::1", "[::1]x", "[]:1", "h:0", "h:65536", "h:", ":1", "h:\u0661", "h:-1"]
)
def test_parse_address_refuses(text: str) -> None:
    with pytest.raises(AddressError):
        parse_address(text)


def test_resolve_address_precedence() -> None:
    env = {"ABP_HOST": "envhost", "ABP_PORT": "1111"}
    assert resolve_address({}) == Address("127.0.0.1", 2007)
    assert resolve_address(env) == Address("envhost", 1111)
    assert resolve_address(env, server="s") == Address("s", 1111)
    assert resolve_address(env, server="s:2") == Address("s", 2)
    assert resolve_address(env, server="s:2", host="[::1]", port="3") == Address("::1", 3)


# ------------------------------------------------------ the tutorial's server

TUTORIAL_SERVER = "conformance.corpus.tutorial.addressbook_server"


@pytest.fixture
def tutorial_server(tmp_path: Path) -> Iterator[ServerProcess]:
    if importlib.util.find_spec(TUTORIAL_SERVER) is None:
        pytest.skip(f"{TUTORIAL_SERVER} is not written yet")
    template = [sys.executable, "-m", TUTORIAL_SERVER, "--host", "{host}", "--port", "{port}"]
    with ServerProcess([*template, "--book", str(tmp_path / "book.json")]) as process:
        yield process


def test_legacy_against_the_tutorial_server(tutorial_server: ServerProcess) -> None:
    """ABP-FRAME-8: answers with no terminator; free text is shown as is."""
    added = run_client(tutorial_server, "--legacy", "add", "ivy", "1 High St, Leeds, 0113")
    assert (added.returncode, added.stdout) == (0, "Entry for ivy added\n"), added.stderr
    found = run_client(tutorial_server, "--legacy", "fnd", "ivy")
    assert (found.returncode, found.stdout) == (0, "1 High St, Leeds, 0113\n"), found.stderr
    missing = run_client(tutorial_server, "--legacy", "fnd", "nobody")
    assert (missing.returncode, missing.stdout) == (0, "No entry found for nobody\n")


def test_legacy_shell_against_the_tutorial_server(tutorial_server: ServerProcess) -> None:
    stdin = "1\njay\n7\nLow Rd\nYork\n01904\n3\njay\n4\n"
    result = run_client(tutorial_server, "--legacy", "--quiet-ms", "150", "shell", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert "Entry for jay added\n" in result.stdout
    assert "Enter the name: 7 Low Rd, York, 01904\n" in result.stdout


def test_tutorial_server_drops_a_second_colon(tutorial_server: ServerProcess) -> None:
    """The tutorial's split(':') closes the link silently: a network failure."""
    result = run_client(tutorial_server, "--legacy", "fnd", "a:b")
    assert result.returncode == 3
    assert "closed the connection before answering" in result.stderr
    assert "Traceback" not in result.stderr
