"""The interactive shell (``abp-client`` with no command), driven through a real
pseudo-terminal with pexpect against a real reference server on 127.0.0.1.

A pipe cannot show what the shell does on a terminal (readline's editing,
history and completion, colour, Ctrl-C and Ctrl-D), so these tests type at it
as a person would. The piped form (no prompt, no colour) is tested too.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from client_process import client_env, run_client
from scripted_server import Peer, ScriptedServer, read_line, read_until_eof

from conformance.harness.process import ServerProcess, reference_server_command, wait_until

TIMEOUT = 10
UP = "\x1b[A"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("shell-book") / "book.sqlite3"
    with ServerProcess(reference_server_command("--db", str(db))) as process:
        yield process


def spawn(port: int, state: Path, *args: str, **env: str) -> pexpect.spawn:
    environ = client_env(XDG_STATE_HOME=str(state), TERM="xterm", LC_ALL="C.UTF-8", **env)
    environ.pop("LANG", None)
    if "NO_COLOR" not in env:
        environ.pop("NO_COLOR", None)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "reference_client", "--server", f"127.0.0.1:{port}", *args],
        env=environ,
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(24, 200),
        # A terminal's shell starts programs with SIGINT at its default; an
        # xdist worker ignores it, and an ignored signal is inherited.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    child.expect_exact("type help; Ctrl-D leaves")
    return child


def prompt(child: pexpect.spawn, port: int) -> None:
    child.expect_exact(f"127.0.0.1:{port}> ")


def leave(child: pexpect.spawn) -> str:
    """Ctrl-D; the rest of the output. The shell exits 0."""
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return str(child.before)


def test_commands_and_colour(server: ServerProcess, tmp_path: Path) -> None:
    port = server.port
    child = spawn(port, tmp_path)
    try:
        prompt(child, port)
        child.sendline("add alice 12 High St")
        child.expect_exact("\x1b[32mOK")  # green: an OK answer
        prompt(child, port)
        child.sendline("fnd alice")
        child.expect_exact("\x1b[32m12 High St\x1b[0m")
        prompt(child, port)
        child.sendline("rem alice")
        prompt(child, port)
        child.sendline("fnd alice")
        child.expect_exact("\x1b[31mERROR: No entry for alice\x1b[0m")  # red: an ERROR
        prompt(child, port)
        child.sendline("raw fnd:x\\n")
        child.expect_exact("ERROR: No entry for x\\n")
        prompt(child, port)
        child.sendline("help")
        child.expect_exact("raw TEXT")
        prompt(child, port)
        child.sendline("quit")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    finally:
        child.close(force=True)


def test_one_connection_is_kept_open(server: ServerProcess, tmp_path: Path) -> None:
    port = server.port
    child = spawn(port, tmp_path, "--trace")
    log: list[str] = []
    try:
        for command in ("add kim 1 Road", "fnd kim", "rem kim"):
            prompt(child, port)
            log.append(str(child.before))
            child.sendline(command)
        prompt(child, port)
        log.append(str(child.before))
        log.append(leave(child))
    finally:
        child.close(force=True)
    text = "".join(log)
    assert text.count("-- connecting to") == 1, text
    assert text.count(">> = ") == 3


def test_history_survives_sessions_and_tab_completes_names(
    server: ServerProcess, tmp_path: Path
) -> None:
    port = server.port
    child = spawn(port, tmp_path)
    try:
        prompt(child, port)
        child.sendline("add zelda-history 7 Low Rd")
        prompt(child, port)
        child.send("fnd zel\t")  # completes the name seen in this session
        child.expect_exact("fnd zelda-history ")
        child.sendline("")
        child.expect_exact("7 Low Rd")
        prompt(child, port)
        child.send("rem\t")  # completes a command
        child.sendline("zelda-history")
        prompt(child, port)
        leave(child)
    finally:
        child.close(force=True)
    history = tmp_path / "abp-client" / "history"
    assert "add zelda-history 7 Low Rd" in history.read_text(encoding="utf-8")
    again = spawn(port, tmp_path)
    try:
        prompt(again, port)
        again.send("add zelda-history again\r")
        prompt(again, port)
        again.send(UP + UP)  # past this session's line to the last session's last
        again.expect_exact("rem zelda-history")
        again.send("\r")
        again.expect_exact("OK")
        prompt(again, port)
        again.sendline("fnd zelda-history")
        again.expect_exact("ERROR: No entry for zelda-history")
        prompt(again, port)
        leave(again)
    finally:
        again.close(force=True)


def test_ctrl_c_cancels_the_line_and_ctrl_d_leaves(server: ServerProcess, tmp_path: Path) -> None:
    port = server.port
    child = spawn(port, tmp_path)
    try:
        prompt(child, port)
        child.send("add never-sent 1 Road")
        # Once echoed, readline has the line and waits for more: a Ctrl-C in
        # the instant between its prompt and its wait would go unseen until
        # the next key (CPython's readline loop), which no person can hit.
        child.expect_exact("add never-sent 1 Road")
        child.sendintr()
        prompt(child, port)
        child.sendline("fnd never-sent")
        child.expect_exact("ERROR: No entry for never-sent")
        prompt(child, port)
        rest = leave(child)
    finally:
        child.close(force=True)
    assert rest.endswith("\n"), repr(rest)  # leaves on a line of its own


def test_no_color_is_respected(server: ServerProcess, tmp_path: Path) -> None:
    port = server.port
    child = spawn(port, tmp_path, NO_COLOR="1")
    try:
        prompt(child, port)
        child.sendline("fnd nobody-colour")
        child.expect_exact("ERROR: No entry for nobody-colour")
        before = str(child.before)
        prompt(child, port)
        rest = leave(child)
    finally:
        child.close(force=True)
    for text in (before, rest):
        assert "\x1b[31m" not in text
        assert "\x1b[32m" not in text


def test_a_closed_connection_is_opened_again(tmp_path: Path) -> None:
    """The server closes after every answer: each command still gets its answer."""

    def answer_once(conn: Peer) -> None:
        line = read_line(conn)
        conn.sendall(b"OK: " + line.strip()[4:] + b"\n")

    scripted = ScriptedServer(answer_once)
    try:
        child = spawn(scripted.port, tmp_path)
        try:
            for name in ("one", "two", "three"):
                prompt(child, scripted.port)
                child.sendline(f"fnd {name}")
                child.expect_exact(f"\x1b[32m{name}\x1b[0m")
            prompt(child, scripted.port)
            leave(child)
        finally:
            child.close(force=True)
    finally:
        scripted.stop()
    assert scripted.accepted == 3
    assert [scripted.data(i) for i in range(3)] == [b"fnd:one\n", b"fnd:two\n", b"fnd:three\n"]


def test_piped_commands_run_without_prompt_or_colour(server: ServerProcess) -> None:
    script = 'add "Mary Ann" 1 Road, York\nfnd Mary Ann\nrem "Mary Ann"\nfnd Mary Ann\nbogus\n'
    result = run_client("--server", f"127.0.0.1:{server.port}", stdin=script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1:] == ["1 Road, York", "OK", "ERROR: No entry for Mary Ann"]
    assert "\x1b[" not in result.stdout
    assert result.stderr == "abp-client: unknown command 'bogus': type help\n"


def test_history_path_follows_xdg(tmp_path: Path) -> None:
    from reference_client.interactive import history_path

    assert history_path({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "abp-client" / "history"
    home = Path(os.path.expanduser("~"))
    assert history_path({}) == home / ".local" / "state" / "abp-client" / "history"


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("add alice 12 High St", ("add", "alice", "12 High St")),
        ("  add alice  two  spaces ", ("add", "alice", " two  spaces")),
        ("add bob", ("add", "bob", "")),
        ('add "Mary Ann" 1 Road', ("add", "Mary Ann", "1 Road")),
        ('fnd "Mary Ann"', ("fnd", "Mary Ann", "")),
        ("fnd Mary Ann", ("fnd", "Mary Ann", "")),
        ("rem a:b", ("rem", "a:b", "")),
        ("raw fnd:x\\n", ("raw", "fnd:x\\n", "")),
        ("help", ("help", "", "")),
        ("quit", ("quit", "", "")),
    ],
)
def test_parse_line(line: str, parsed: tuple[str, str, str]) -> None:
    from reference_client.interactive import parse_line

    assert parse_line(line) == parsed


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("frob x", "unknown command 'frob'"),
        ("fnd", "fnd needs a NAME"),
        ('add "open quote', 'ends with "'),
        ('fnd "a"b', "space after the closing"),
        ('rem "a" b', "rem takes only a NAME"),
        ("raw", "raw needs TEXT"),
    ],
)
def test_parse_line_refuses(line: str, words: str) -> None:
    from reference_client.interactive import UsageError, parse_line

    with pytest.raises(UsageError, match=words):
        parse_line(line)


def test_bytes_after_an_answer_are_said_and_the_connection_dropped() -> None:
    """A kept connection that brings more than the answer is never reused."""

    def chatty(conn: Peer) -> None:
        line = read_line(conn)
        conn.sendall(b"OK: " + line.strip()[4:] + b"\nsurprise\n")
        read_line(conn)

    server = ScriptedServer(chatty)
    try:
        result = run_client("--server", f"127.0.0.1:{server.port}", stdin="fnd a\nfnd b\n")
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout == "a\nb\n"
    assert result.stderr.count("bytes after the answer, answering no request ('surprise") == 2
    assert server.accepted == 2


def test_ctrl_c_cancels_a_request_in_flight(tmp_path: Path) -> None:
    """A server that never answers: Ctrl-C gives the prompt back at once."""
    silent = ScriptedServer(read_until_eof)
    try:
        child = spawn(silent.port, tmp_path, "--timeout", "60")
        try:
            prompt(child, silent.port)
            child.sendline("fnd waiting")
            child.expect_exact("fnd waiting")
            assert wait_until(
                lambda: silent.accepted and silent.data() == b"fnd:waiting\n", TIMEOUT
            )
            child.sendintr()
            child.expect_exact("cancelled; the connection is closed")
            prompt(child, silent.port)
            leave(child)
        finally:
            child.close(force=True)
    finally:
        silent.stop()
