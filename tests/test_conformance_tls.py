"""The suite and the bench over TLS (docs/spec.md section 9), as a user runs them:
``python -m conformance`` in a subprocess against a real ``abp-server
--tls-cert ... --port 0`` on 127.0.0.1. Every certificate is made for the test
by ``trustme`` in ``tmp_path``; no key file is committed.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conformance.harness.tls import TlsSettings, throwaway_pki

if TYPE_CHECKING:
    from conftest import Spawned, SpawnServer

pytest.importorskip("trustme")

RUN_TIMEOUT = 240  # a whole suite run; each of its waits is bounded far below this


def conformance(
    cwd: Path, *args: str, timeout: float = RUN_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def tls_server(
    spawn_server: SpawnServer, tmp_path: Path, *, client_auth: bool = False
) -> tuple[Spawned, TlsSettings]:
    flags, settings = throwaway_pki(str(tmp_path), client_auth=client_auth)
    return spawn_server("--port", "0", "--idle-timeout", "1", *flags), settings


def target(server: Spawned) -> str:
    return f"tls://127.0.0.1:{server.port}"


def records(report: Path) -> list[dict[str, object]]:
    data = json.loads(report.read_text())
    tests = data["tests"]
    assert isinstance(tests, list)
    return tests


def test_the_whole_suite_passes_over_tls(spawn_server: SpawnServer, tmp_path: Path) -> None:
    server, tls = tls_server(spawn_server, tmp_path)
    assert tls.ca is not None
    report = tmp_path / "report.json"
    done = conformance(
        tmp_path,
        "run", "--server", target(server), "--ca", tls.ca,
        "--idle-timeout", "1", "-n", "2", "--json", str(report),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    assert f"abp server at {target(server)}" in done.stdout
    assert " 0 failed, 0 warned" in done.stdout
    tests = records(report)
    passed = {str(t["nodeid"]) for t in tests if t["outcome"] == "PASS"}
    assert len(passed) > 100
    for name in ("abp_1_unchanged", "nothing_after_tls_1_1", "plaintext_client"):
        assert any(name in nodeid for nodeid in passed), name
    text = report.read_text()
    assert text.count("TLS session: TLSv1.") > 100  # every connection is TLS
    reasons = {str(t["skip_reason"]) for t in tests if t["outcome"] == "SKIP"}
    expected = ("TLS has no half-close", "--tls-client-auth", "--server-cmd", "--max-conns")
    assert all(any(why in reason for why in expected) for reason in reasons), reasons


def test_client_certificates_over_tls(spawn_server: SpawnServer, tmp_path: Path) -> None:
    """With ``--tls-client-auth`` the suite tests ABP-TLS-4; every other
    connection presents the suite's certificate."""
    server, tls = tls_server(spawn_server, tmp_path, client_auth=True)
    assert tls.ca is not None
    assert tls.cert is not None
    common = ["run", "--server", target(server), "--ca", tls.ca, "-n", "0"]
    done = conformance(
        tmp_path, *common, "--cert", tls.cert, "--tls-client-auth",
        "--requirement", "ABP-TLS", "--requirement", "ABP-REQ-1",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    assert "ABP-TLS-4        MUST    PASS     2 tests" in done.stdout
    without = conformance(tmp_path, *common)  # no certificate: not even the first connection
    assert without.returncode == 2, without.stdout[-4000:] + without.stderr
    assert without.stderr.startswith(f"conformance: error: {target(server)} refused the suite")
    assert len(without.stderr.splitlines()) == 1


def test_private_servers_of_a_server_command_over_tls(tmp_path: Path) -> None:
    """``--server-cmd ... --tls``: the restart and SIGKILL tests reach their own
    instances over TLS too."""
    flags, tls = throwaway_pki(str(tmp_path))
    assert tls.ca is not None
    command = [sys.executable, "-m", "reference_server", "--port", "{port}"]
    template = " ".join([*command, "--db", "{tmpdir}/book.sqlite3", *flags])
    done = conformance(
        tmp_path, "run", "--server-cmd", template, "--tls", "--ca", tls.ca, "-n", "0",
        "--requirement", "ABP-DUR-2", "--requirement", "ABP-TLS-1", "--json", "r.json",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    tests = records(tmp_path / "r.json")
    assert {t["outcome"] for t in tests} == {"PASS"}
    assert "starting private server" in (tmp_path / "r.json").read_text()


def test_a_server_that_does_not_verify_clients_fails_abp_tls_4(
    spawn_server: SpawnServer, tmp_path: Path
) -> None:
    server, tls = tls_server(spawn_server, tmp_path)  # no --tls-client-ca
    (tmp_path / "other").mkdir()
    _, with_cert = throwaway_pki(str(tmp_path / "other"), client_auth=True)
    assert tls.ca is not None
    assert with_cert.cert is not None
    done = conformance(
        tmp_path, "run", "--server", target(server), "--ca", tls.ca, "-n", "0",
        "--cert", with_cert.cert, "--tls-client-auth", "--requirement", "ABP-TLS-4",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr
    assert "broken MUSTs (1): ABP-TLS-4" in done.stdout
    assert "the server answered" in done.stdout


def test_a_plaintext_server_given_as_tls_is_one_line_exit_2(
    spawn_server: SpawnServer, tmp_path: Path
) -> None:
    plain = spawn_server("--port", "0")
    done = conformance(tmp_path, "run", "--server", target(plain), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "Traceback" not in done.stderr
    assert lines[0].startswith(f"conformance: error: no TLS session with {target(plain)}")
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--server", "127.0.0.1:{port}", "--ca", "ca.pem"], "--ca needs a TLS target"),
        (["--tls", "--ca", "ca.pem"], "throw-away certificates"),
        (["--server", "tls://127.0.0.1:{port}", "--ca", "missing.pem"], "missing.pem"),
        (["--server", "tls://127.0.0.1:{port}", "--tls-client-auth"], "client certificate"),
        (["--server", "tls://127.0.0.1:{port}", "--key", "k.pem"], "--key k.pem"),
        (["--client", "x {port}", "--tls"], "no server options"),
    ],
)
def test_tls_usage_errors_are_one_line_exit_2(
    spawn_server: SpawnServer, tmp_path: Path, args: list[str], words: str
) -> None:
    server = spawn_server("--port", "0")
    argv = [arg.replace("{port}", str(server.port)) if "127.0.0.1" in arg else arg for arg in args]
    done = conformance(tmp_path, "run", *argv, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert words in lines[0]


def test_embedded_server_over_tls_with_client_certificates(tmp_path: Path) -> None:
    done = conformance(
        tmp_path, "run", "--tls", "--tls-client-auth", "-n", "0",
        "--requirement", "ABP-TLS", "--requirement", "ABP-TRANSPORT",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    assert "--tls-client-ca" in done.stdout  # the embedded server was started with it
    assert "abp server at tls://127.0.0.1:" in done.stdout
    assert "0 skipped" in done.stdout


def test_bench_over_tls(spawn_server: SpawnServer, tmp_path: Path) -> None:
    server, tls = tls_server(spawn_server, tmp_path)
    assert tls.ca is not None
    done = conformance(
        tmp_path, "bench", "--server", target(server), "--ca", tls.ca,
        "--requests", "300", "--connections", "3", "--mix", "fnd:50,add:50", "--no-progress",
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"bench: {target(server)}, line framing")
    assert "errors: none" in done.stdout
    assert "0 lost" in done.stdout


# -- ABP-TLS-2 can fail: a server that still speaks TLS 1.1
def _offers(version: ssl.TLSVersion) -> bool:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        try:
            context.minimum_version = context.maximum_version = version
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):
            return False
    try:
        context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO()).do_handshake()
    except ssl.SSLWantReadError:
        return True
    except ssl.SSLError:
        return False
    return True


@pytest.fixture
def old_tls_server(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """A TLS server on 127.0.0.1 that accepts TLS 1.0 and 1.1 and answers every
    line ``ERROR: No entry for NAME``: a wrong server for ABP-TLS-2."""
    import warnings

    flags, settings = throwaway_pki(str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.load_cert_chain(flags[1])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    buffer = b""
                    while chunk := tls.recv(4096):
                        buffer += chunk
                        while b"\n" in buffer:
                            line, _, buffer = buffer.partition(b"\n")
                            name = line.partition(b":")[2]
                            tls.sendall(b"ERROR: No entry for " + name + b"\n")
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        assert settings.ca is not None
        yield listener.getsockname()[1], settings.ca
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_a_server_accepting_tls_1_1_fails_abp_tls_2(
    old_tls_server: tuple[int, str], tmp_path: Path
) -> None:
    if not _offers(ssl.TLSVersion.TLSv1_1):
        pytest.skip("this machine's OpenSSL cannot offer TLS 1.1")
    port, ca = old_tls_server
    done = conformance(
        tmp_path, "run", "--server", f"tls://127.0.0.1:{port}", "--ca", ca, "-n", "0",
        "--framing", "line", "--requirement", "ABP-TLS-2", timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr
    assert "broken MUSTs (1): ABP-TLS-2" in done.stdout
    assert "the server negotiated TLSv1.1" in done.stdout


def test_plain_pytest_over_tls(spawn_server: SpawnServer, tmp_path: Path) -> None:
    """The plugin's ``--abp-server tls://`` and ``--abp-ca``: the TLS tests pass;
    TLS options with a plain target are a usage error."""
    server, tls = tls_server(spawn_server, tmp_path)
    assert tls.ca is not None
    pytest_args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    suite = ["--pyargs", "conformance.suites.server", "-k", "tls"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*pytest_args, *suite, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = run("--abp-server", target(server), "--abp-ca", tls.ca)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "6 passed, 2 skipped" in done.stdout  # ABP-TLS-4 wants --abp-tls-client-auth
    wrong = run("--abp-server", f"127.0.0.1:{server.port}", "--abp-ca", tls.ca)
    assert wrong.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--abp-ca needs --abp-server tls://HOST:PORT" in wrong.stderr
