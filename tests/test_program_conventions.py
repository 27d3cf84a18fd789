"""ABP-TRANSPORT-3: the programs' address conventions, checked on the real programs.

Role ``program`` requirements are not on the wire, so the conformance suite
cannot see them; these tests hold the reference programs to them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conformance.harness.process import LOOPBACK, ServerProcess, free_port, reference_server_command
from protocol import requirements

if TYPE_CHECKING:
    from conftest import SpawnServer

TIMEOUT = 10.0


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ABP_HOST", "ABP_PORT")}
    env.update(extra)
    return env


def _client(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reference_client", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.mark.requirement("ABP-TRANSPORT-3")
def test_default_address_is_the_tutorials() -> None:
    """Programs SHOULD default to 127.0.0.1:2007."""
    from protocol import DEFAULT_HOST, DEFAULT_PORT

    assert (DEFAULT_HOST, DEFAULT_PORT) == ("127.0.0.1", 2007)
    for module in ("reference_server", "reference_client"):
        out = subprocess.run(
            [sys.executable, "-m", module, "--help"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
            env=_env(),
        ).stdout
        assert "2007" in out, f"{module} --help does not name the default port"


@pytest.mark.requirement("ABP-TRANSPORT-3")
def test_server_and_client_take_the_address_from_the_environment(tmp_path: Path) -> None:
    """... SHOULD take the host and port from ABP_HOST and ABP_PORT."""
    port = free_port()
    env = _env(ABP_HOST=LOOPBACK, ABP_PORT=str(port))
    # The server command names no --host/--port: only the environment says where.
    server = ServerProcess(
        [sys.executable, "-m", "reference_server", "--db", str(tmp_path / "b.sqlite3")],
        port=port,
        env=env,
    )
    with server:
        added = _client("add", "env-name", "env entry", env=env)
        assert added.returncode == 0, added.stderr
        found = _client("fnd", "env-name", env=env)
        assert (found.returncode, found.stdout) == (0, "env entry\n")


@pytest.mark.requirement("ABP-TRANSPORT-3")
def test_command_line_wins_over_the_environment(tmp_path: Path) -> None:
    """... the command line winning."""
    wrong = free_port()  # nobody listens there
    env = _env(ABP_HOST=LOOPBACK, ABP_PORT=str(wrong))
    command = reference_server_command("--db", str(tmp_path / "b.sqlite3"))
    with ServerProcess(command, env=env) as server:
        ok = _client("--server", f"{LOOPBACK}:{server.port}", "fnd", "nobody", env=env)
        assert ok.returncode == 1, ok.stderr  # reached the server: "No entry"
        assert "No entry for nobody" in ok.stderr
        refused = _client("fnd", "nobody", env=env)
        assert refused.returncode == 3  # abp-client: a network failure
        assert "Traceback" not in refused.stderr


@pytest.mark.requirement("ABP-TRANSPORT-3")
def test_bracketed_ipv6_addresses_are_accepted(tmp_path: Path) -> None:
    """An address written host:port accepts bracketed IPv6 ([::1]:2007)."""
    try:
        port = free_port("::1")
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    command = reference_server_command("--db", str(tmp_path / "b.sqlite3"))
    with ServerProcess(command, host="::1", port=port, env=_env()):
        added = _client("--server", f"[::1]:{port}", "add", "v6", "entry over ::1", env=_env())
        assert added.returncode == 0, added.stderr
        found = _client("--server", f"[::1]:{port}", "fnd", "v6", env=_env())
        assert found.stdout == "entry over ::1\n"


def test_every_program_requirement_is_tested_here() -> None:
    """Role-``program`` requirements are covered by tests of this project."""
    source = Path(__file__).read_text(encoding="utf-8")
    for req in requirements.catalogue().values():
        if req.role == "program":
            assert f'requirement("{req.id}")' in source


@pytest.mark.requirement("ABP-TLS-5")
def test_the_server_warns_when_listening_beyond_loopback_without_tls(
    spawn_server: SpawnServer,
) -> None:
    """A server program SHOULD warn, in one line on start, when it listens on an
    address that is not loopback without TLS. (Binds 0.0.0.0, connects only to
    127.0.0.1; with TLS there is no warning: tests/test_reference_server_tls.py.)"""
    import signal
    import socket

    for host, warned in (("0.0.0.0", True), ("127.0.0.1", False)):
        server = spawn_server("--host", host, "--port", "0")
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            sock.sendall(b"fnd:w\n")
            assert sock.recv(100) == b"ERROR: No entry for w\n"
        assert server.signal(signal.SIGTERM) == 0
        lines = server.stderr().splitlines()
        assert len(lines) == (1 if warned else 0), lines
        if warned:
            assert f"listening on 0.0.0.0:{server.port} without TLS" in lines[0]
