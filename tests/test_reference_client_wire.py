"""abp-client against scripted, misbehaving servers (ABP-FRAME-7, -8, -14,
ABP-REQ-12, -13, ABP-CONN-10, ABP-CLIENT-1 .. -7).

Each scripted server (``scripted_server.ScriptedServer``) is one thread on
127.0.0.1 port 0 that serves its connections one at a time with a script,
records every byte it receives, and is stopped in teardown. The scripts live
next to the tests that use them. The client always runs as a real subprocess.
"""

from __future__ import annotations

import re
import socket
import time

import pytest
from client_process import client_env, run_client
from scripted_server import (
    Peer,
    Script,
    ScriptedServer,
    StartServer,
    answer,
    read_line,
    read_until_eof,
)

from conformance.harness.process import free_port, wait_until

# ------------------------------------------------------------------ helpers


def at(server: ScriptedServer) -> list[str]:
    return ["--server", f"127.0.0.1:{server.port}"]


def assert_one_clean_line(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert len(stderr.splitlines()) == 1, stderr


# ------------------------------------------------------- network failures


def test_connection_refused_is_exit_3_with_one_line() -> None:
    port = free_port()
    result = run_client("--server", f"127.0.0.1:{port}", "fnd", "bob")
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr == f"abp-client: cannot connect to 127.0.0.1:{port}: connection refused\n"


def test_server_that_never_answers_times_out_with_exit_3(scripted: StartServer) -> None:
    server = scripted(read_until_eof)
    started = time.monotonic()
    result = run_client(*at(server), "--timeout", "0.5", "fnd", "bob")
    elapsed = time.monotonic() - started
    assert result.returncode == 3
    assert_one_clean_line(result.stderr)
    assert "no answer" in result.stderr
    assert "0.5s" in result.stderr
    assert elapsed < 5
    assert wait_until(lambda: server.data() == b"fnd:bob\n", 5)


def test_close_before_answer_is_exit_3(scripted: StartServer) -> None:
    server = scripted(answer())
    result = run_client(*at(server), "fnd", "bob")
    assert result.returncode == 3
    assert_one_clean_line(result.stderr)
    assert "closed the connection before answering" in result.stderr


def test_close_mid_answer_with_malformed_prefix_is_exit_3(scripted: StartServer) -> None:
    server = scripted(answer(b"ERR"))
    result = run_client(*at(server), "fnd", "bob")
    assert result.returncode == 3
    assert_one_clean_line(result.stderr)
    assert "malformed answer" in result.stderr
    assert "ABP-RESP-1" in result.stderr


def test_reset_is_exit_3(scripted: StartServer) -> None:
    def reset(conn: Peer) -> None:
        read_line(conn)
        conn.sendall(b"OK: par")
        conn.reset_on_close()

    server = scripted(reset)
    result = run_client(*at(server), "fnd", "bob")
    assert result.returncode == 3, result
    assert_one_clean_line(result.stderr)
    assert "reset" in result.stderr


def test_malformed_answer_is_exit_3(scripted: StartServer) -> None:
    server = scripted(answer(b"HELLO there\n"))
    result = run_client(*at(server), "add", "bob", "x")
    assert result.returncode == 3
    assert_one_clean_line(result.stderr)
    assert "HELLO there" in result.stderr
    assert result.stdout == ""


# ---------------------------------------------------------------- framing


def test_answer_in_many_small_segments_is_read_up_to_lf(scripted: StartServer) -> None:
    """ABP-FRAME-7: one recv() is not one message (a multi-byte character split too)."""
    wire = "OK: a,b:c 🐍 ünï\n".encode()
    segments = [wire[i : i + 2] for i in range(0, len(wire), 2)]
    server = scripted(answer(*segments, pause=0.01, close=False))
    result = run_client(*at(server), "fnd", "bob")
    assert (result.returncode, result.stdout) == (0, "a,b:c 🐍 ünï\n"), result.stderr
    assert len(segments) > 10


def test_answer_ended_by_eof_is_accepted_and_said(scripted: StartServer) -> None:
    """ABP-FRAME-8: end of stream ends an unterminated answer; stderr says so."""
    server = scripted(answer(b"OK: par"))
    result = run_client(*at(server), "fnd", "bob")
    assert (result.returncode, result.stdout) == (0, "par\n"), result.stderr
    assert result.stderr == "abp-client: answer ended by the connection closing, without LF\n"


def test_4000_byte_answer(scripted: StartServer) -> None:
    entry = ("0123456789:,é" * 400)[:4000]
    server = scripted(answer(b"OK: " + entry.encode() + b"\n", close=False))
    result = run_client(*at(server), "fnd", "bob")
    assert result.returncode == 0, result.stderr
    assert result.stdout == entry + "\n"


@pytest.mark.parametrize(
    ("wire", "operation", "stdout"),
    [
        (b"OK\n", "add", "OK\n"),
        (b"OK: added bob\n", "add", "added bob\n"),
        (b"OK\r\n", "rem", "OK\n"),
        (b"OK: \n", "fnd", "\n"),
    ],
)
def test_ok_answers_print_their_text(
    scripted: StartServer, wire: bytes, operation: str, stdout: str
) -> None:
    server = scripted(answer(wire, close=False))
    args = [operation, "bob"] + (["x"] if operation == "add" else [])
    result = run_client(*at(server), *args)
    assert (result.returncode, result.stdout, result.stderr) == (0, stdout, "")


def test_error_answer_is_exit_1_with_text_on_stderr(scripted: StartServer) -> None:
    server = scripted(answer(b"ERROR: No entry for bob\n", close=False))
    result = run_client(*at(server), "fnd", "bob")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "ERROR: No entry for bob\n"


def test_any_error_prefix_is_an_error(scripted: StartServer) -> None:
    """ABP-RESP-5: "ERROR:" with any text after it."""
    server = scripted(answer(b"ERROR:odd\n"))
    result = run_client(*at(server), "rem", "bob")
    assert result.returncode == 1
    assert "odd" in result.stderr


# --------------------------------------------------- what goes on the wire


def echo_ok(conn: Peer) -> None:
    read_line(conn)
    conn.sendall(b"OK\n")
    read_until_eof(conn)


@pytest.mark.parametrize(
    ("args", "wire"),
    [
        (["add", "bob", "1, High St: x"], b"add:bob,1, High St: x\n"),
        (["add", "bob"], b"add:bob,\n"),
        (["add", "bob", ""], b"add:bob,\n"),
        (["rem", "a:b"], b"rem:a:b\n"),
        (["fnd", " Bob "], b"fnd: Bob \n"),
        (["fnd", "bob", ""], b"fnd:bob\n"),
        (["add", "--", "-dash", "--entry"], b"add:-dash,--entry\n"),
        (["add", "zoë", "\t🐍 ,:"], "add:zoë,\t🐍 ,:\n".encode()),
    ],
)
def test_requests_are_sent_exactly(scripted: StartServer, args: list[str], wire: bytes) -> None:
    """ABP-REQ-12, ABP-CLIENT-1: the one operation, name and entry as given."""
    server = scripted(echo_ok)
    result = run_client(*at(server), *args)
    assert result.returncode == 0, result.stderr
    assert server.data() == wire
    assert server.accepted == 1


@pytest.mark.parametrize(
    "args",
    [
        ["fnd", ""],
        ["add", "a,b", "x"],
        ["rem", "a\nb"],
        ["fnd", "a\rb"],
        ["add", "bob", "line\nbreak"],
        ["add", "bob", "cr\r"],
        ["rem", "bob", "not-empty"],
        ["raw", "bad \\q escape"],
        ["raw", "trailing \\"],
        ["--timeout", "-1", "fnd", "bob"],
        ["--quiet-ms", "x", "fnd", "bob"],
        ["frob", "bob"],
        ["add"],
    ],
)
def test_invalid_input_is_exit_2_and_sends_nothing(scripted: StartServer, args: list[str]) -> None:
    """ABP-REQ-13: refused without sending anything."""
    server = scripted(echo_ok)
    result = run_client(*at(server), *args)
    assert result.returncode == 2
    assert_one_clean_line(result.stderr)
    assert result.stdout == ""
    server.stop()  # joins the thread and drains the accept queue
    assert server.accepted == 0


@pytest.mark.parametrize(
    "server_option",
    ["127.0.0.1:0", "127.0.0.1:70000", "::1:2007", "[::1", "host:port", ":2007"],
)
def test_bad_address_is_exit_2(server_option: str) -> None:
    result = run_client("--server", server_option, "fnd", "bob")
    assert result.returncode == 2
    assert_one_clean_line(result.stderr)


def test_bad_abp_port_env_is_exit_2() -> None:
    result = run_client("fnd", "bob", env=client_env(ABP_PORT="nope"))
    assert result.returncode == 2
    assert "ABP_PORT" in result.stderr


def test_address_from_environment(scripted: StartServer) -> None:
    """ABP-TRANSPORT-3: ABP_HOST/ABP_PORT, and the command line winning."""
    server = scripted(echo_ok)
    env = client_env(ABP_HOST="127.0.0.1", ABP_PORT=str(server.port))
    assert run_client("add", "a", "x", env=env).returncode == 0
    wrong = client_env(ABP_HOST="127.0.0.1", ABP_PORT=str(free_port()))
    assert run_client("--port", str(server.port), "add", "b", env=wrong).returncode == 0
    assert run_client("add", "c", "--port", str(server.port), env=wrong).returncode == 0
    assert run_client("add", "d", env=wrong).returncode == 3
    assert server.accepted == 3


def test_host_name_address(scripted: StartServer) -> None:
    """ABP-TRANSPORT-2: a host name."""
    server = scripted(echo_ok)
    result = run_client("--server", f"localhost:{server.port}", "add", "bob", "x")
    assert result.returncode == 0, result.stderr
    assert server.data() == b"add:bob,x\n"


def test_bracketed_ipv6_address(scripted: StartServer) -> None:
    try:
        server = scripted(echo_ok, socket.AF_INET6)
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    result = run_client("--server", f"[::1]:{server.port}", "fnd", "bob")
    assert (result.returncode, result.stdout) == (0, "\n"), result.stderr
    assert server.data() == b"fnd:bob\n"
    # the argv-contract template form: --host {host} --port {port} {op} -- {name} {entry}
    result = run_client("--host", "::1", "--port", str(server.port), "rem", "--", "-b", "")
    assert (result.returncode, result.stdout) == (0, "OK\n"), result.stderr
    assert wait_until(lambda: server.accepted == 2, 5)
    assert server.data(1) == b"rem:-b\n"


# ------------------------------------------------------------------- legacy


def legacy_server(reply: bytes, *, close: bool) -> Script:
    """The tutorial's way: one recv() is the request, the answer has no LF."""

    def script(conn: Peer) -> None:
        conn.recv(1024)
        conn.sendall(reply)
        if not close:
            read_until_eof(conn)

    return script


def test_legacy_answer_closed_by_server(scripted: StartServer) -> None:
    server = scripted(legacy_server(b"Entry for bob added", close=True))
    result = run_client(*at(server), "--legacy", "add", "bob", "1 High St")
    assert (result.returncode, result.stdout) == (0, "Entry for bob added\n"), result.stderr
    assert server.data() == b"add:bob,1 High St"  # no terminator in legacy mode


def test_legacy_answer_ended_by_quiet_period(scripted: StartServer) -> None:
    server = scripted(legacy_server(b"1 High St, Leeds", close=False))
    started = time.monotonic()
    result = run_client(*at(server), "--legacy", "--quiet-ms", "150", "fnd", "bob")
    assert (result.returncode, result.stdout) == (0, "1 High St, Leeds\n"), result.stderr
    assert time.monotonic() - started < 4
    assert server.data() == b"fnd:bob"


def test_legacy_error_answer_is_exit_1(scripted: StartServer) -> None:
    server = scripted(legacy_server(b"ERROR: Unrecognised command: fnd", close=True))
    result = run_client(*at(server), "--legacy", "fnd", "bob")
    assert result.returncode == 1
    assert result.stderr == "ERROR: Unrecognised command: fnd\n"


def test_free_text_without_legacy_is_a_protocol_failure(scripted: StartServer) -> None:
    server = scripted(legacy_server(b"Entry for bob added", close=True))
    result = run_client(*at(server), "add", "bob", "x")
    assert result.returncode == 3
    assert "malformed answer" in result.stderr


# ---------------------------------------------------------------------- raw


def echo_back(conn: Peer) -> None:
    """Sends back whatever arrived once the client half-closes."""
    conn.sendall(read_until_eof(conn))


def test_raw_sends_escapes_exactly_and_prints_escaped(scripted: StartServer) -> None:
    server = scripted(echo_back)
    text = "fnd:b\\x00\\tz\\\\é\\r\\n\\xff"
    result = run_client(*at(server), "raw", "--half-close", text)
    assert result.returncode == 0, result.stderr
    assert server.data() == b"fnd:b\x00\tz\\\xc3\xa9\r\n\xff"
    assert result.stdout == text + "\n"
    assert "the server closed the connection" in result.stderr


def test_raw_stops_after_wait_seconds_of_silence(scripted: StartServer) -> None:
    server = scripted(answer(b"OK: first\n", b"no LF", close=False))
    started = time.monotonic()
    result = run_client(*at(server), "raw", "--wait", "0.3", "fnd:x\\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "OK: first\\nno LF\n"
    assert "no byte for 0.3s" in result.stderr
    assert time.monotonic() - started < 4
    assert server.data() == b"fnd:x\n"


def test_raw_refused_is_exit_3() -> None:
    result = run_client("--server", f"127.0.0.1:{free_port()}", "raw", "fnd:x\\n")
    assert result.returncode == 3
    assert_one_clean_line(result.stderr)


# -------------------------------------------------------------------- trace

TRACE_LINE = re.compile(r"^\+\d+\.\d{4}s (>>|<<|--) .+$")
FRAME_LINE = re.compile(r'^\+\d+\.\d{4}s (>>|<<) (\d+) bytes "(.*)" hex ((?:[0-9a-f]{2} ?)+)$')


def test_trace_shows_frames_hex_and_decoding(scripted: StartServer) -> None:
    server = scripted(answer(b"OK: ", b"x\n", pause=0.05, close=False))
    result = run_client(*at(server), "--trace", "add", "bob", "x")
    assert (result.returncode, result.stdout) == (0, "x\n")
    lines = result.stderr.splitlines()
    assert all(TRACE_LINE.match(line) for line in lines), lines
    frames = [m for m in map(FRAME_LINE.match, lines) if m]
    assert [(m[1], m[2], m[3]) for m in frames] == [
        (">>", "10", "add:bob,x\\n"),
        ("<<", "4", "OK: "),
        ("<<", "2", "x\\n"),
    ]
    assert frames[0][4].strip() == "61 64 64 3a 62 6f 62 2c 78 0a"
    assert any(line.endswith(">> = Add(name='bob', entry='x')") for line in lines)
    assert any(line.endswith("<< = Ok(text='x')") for line in lines)
    stamps = [float(line[1:].split("s ", 1)[0]) for line in lines]
    assert stamps == sorted(stamps)


def test_trace_shows_the_remote_protocol_error(scripted: StartServer) -> None:
    server = scripted(answer(b"BOGUS\n", close=False))
    result = run_client(*at(server), "--trace", "fnd", "bob")
    assert result.returncode == 3
    assert "<< ! RemoteProtocolError:" in result.stderr
    assert "ABP-RESP-1" in result.stderr
    assert "Traceback" not in result.stderr


def test_trace_with_raw_decodes_both_directions(scripted: StartServer) -> None:
    server = scripted(echo_back)
    result = run_client(*at(server), "--trace", "raw", "--half-close", "fnd:a\\nnocolon\\n")
    assert result.returncode == 0
    assert ">> = Find(name='a')" in result.stderr
    assert ">> ! no ':' in request" in result.stderr
    assert "(a server answers ERROR: Malformed request)" in result.stderr
    assert "<< ! RemoteProtocolError:" in result.stderr  # "fnd:a" is no response
    assert "<< = end of stream" in result.stderr


# -------------------------------------------------------------------- shell


def test_shell_bad_choices_send_nothing(scripted: StartServer) -> None:
    """ABP-CLIENT-7: the menu again, nothing sent."""
    server = scripted(echo_ok)
    result = run_client(*at(server), "shell", stdin="x\n9\n0\n\n 4 \n")
    assert result.returncode == 0
    assert result.stdout.count("Choose an option[1-4] ") == 5
    assert result.stdout.count("1) Add Entry\n2) Delete Entry\n3) Find Entry\n4) Quit\n") == 5
    server.stop()
    assert server.accepted == 0


def test_shell_invalid_names_get_a_message_and_the_menu(scripted: StartServer) -> None:
    server = scripted(echo_ok)
    stdin = "3\na\x00b\n2\n\n1\na,b\n1\nSt\nTown\n1\n4\n"
    result = run_client(*at(server), "shell", stdin=stdin)
    assert result.returncode == 0
    assert result.stdout.count("Not sent: invalid input") == 3
    assert result.stdout.count("Choose an option[1-4] ") == 4
    assert "Traceback" not in result.stderr
    server.stop()
    assert server.accepted == 0


def test_shell_sends_the_tutorial_requests(scripted: StartServer) -> None:
    """ABP-CLIENT-5, -6: one connection per command, the tutorial's entry format."""
    server = scripted(echo_ok)
    stdin = "1\nann\n12\nHigh St\nLeeds\n0113 496 0000\n2\nann\n3\nbob\n4\n"
    result = run_client(*at(server), "shell", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert wait_until(lambda: server.accepted == 3, 5)
    assert [server.data(i) for i in range(3)] == [
        b"add:ann,12 High St, Leeds, 0113 496 0000\n",
        b"rem:ann\n",
        b"fnd:bob\n",
    ]


def test_shell_network_error_prints_a_message_and_continues() -> None:
    port = free_port()
    result = run_client("--server", f"127.0.0.1:{port}", "shell", stdin="3\nbob\n3\nann\n4\n")
    assert result.returncode == 0
    assert result.stderr.count("cannot connect") == 2
    assert result.stdout.count("Choose an option[1-4] ") == 3
    assert "Traceback" not in result.stderr


def test_shell_end_of_input_quits_with_0() -> None:
    result = run_client("--server", f"127.0.0.1:{free_port()}", "shell", stdin="1\nann\n12\n")
    assert result.returncode == 0
    assert result.stderr == ""


def test_help_lists_the_exit_codes() -> None:
    commands = ("add", "rem", "fnd", "raw", "shell", "proxy", "replay")
    for args in (["--help"], *([command, "--help"] for command in commands)):
        result = run_client(*args)
        assert result.returncode == 0
        for code in ("0 ", "1 ", "2 ", "3 ", "130 "):
            assert f"\n  {code}" in result.stdout, (args, result.stdout)
