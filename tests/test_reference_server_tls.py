"""ABP over TLS (docs/spec.md section 9), server side: ``abp-server --tls-cert
--tls-key [--tls-client-ca]`` as a real process on 127.0.0.1, real TLS
clients. Every certificate is made for the test by ``trustme`` in
``tmp_path`` (a throw-away CA): no key file is ever committed.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import TIMEOUT

if TYPE_CHECKING:
    from conftest import Spawned, SpawnServer

trustme = pytest.importorskip("trustme")


class Pki:
    """A throw-away CA, the server's certificate for 127.0.0.1, and files for them."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.server = self.ca.issue_cert("127.0.0.1", "localhost")
        self.cert = directory / "server.pem"
        self.key = directory / "server.key"
        self.ca_file = directory / "ca.pem"
        self.server.cert_chain_pems[0].write_to_path(str(self.cert))
        for blob in self.server.cert_chain_pems[1:]:
            blob.write_to_path(str(self.cert), append=True)
        self.server.private_key_pem.write_to_path(str(self.key))
        self.ca.cert_pem.write_to_path(str(self.ca_file))

    def flags(self) -> list[str]:
        return ["--tls-cert", str(self.cert), "--tls-key", str(self.key)]

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(context)
        return context


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def tls_exchange(address: tuple[str, int], context: ssl.SSLContext, *lines: bytes) -> list[bytes]:
    """Connect over TLS, send each line and read one answer line for each."""
    answers = []
    with (
        socket.create_connection(address, timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        buffer = b""
        for line in lines:
            sock.sendall(line)
            while b"\n" not in buffer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                buffer += chunk
            answer, _, buffer = buffer.partition(b"\n")
            answers.append(answer + b"\n")
    return answers


def no_abp_bytes(address: tuple[str, int], context: ssl.SSLContext) -> bytes:
    """What a client refused in the handshake reads: must be nothing of ABP."""
    received = b""
    with socket.create_connection(address, timeout=TIMEOUT) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                sock.sendall(b"fnd:secret\n")
                while chunk := sock.recv(4096):
                    received += chunk
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            pass
    return received


@pytest.mark.requirement("ABP-TLS-1")
def test_abp_inside_tls(spawn_server: SpawnServer, pki: Pki) -> None:
    server = spawn_server("--port", "0", *pki.flags())
    assert tls_exchange(
        server.address, pki.client_context(), b"add:tls,1 Secure St\n", b"fnd:tls\n"
    ) == [b"OK\n", b"OK: 1 Secure St\n"]
    # The same book, read again on a new session.
    assert tls_exchange(server.address, pki.client_context(), b"fnd:tls\n") == [
        b"OK: 1 Secure St\n"
    ]


@pytest.mark.requirement("ABP-TLS-2")
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_2_or_later_only(spawn_server: SpawnServer, pki: Pki) -> None:
    server = spawn_server("--port", "0", *pki.flags())
    with (
        socket.create_connection(server.address, timeout=TIMEOUT) as raw,
        pki.client_context().wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
    old = pki.client_context()
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with contextlib.suppress(ssl.SSLError):
        old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer TLS 1.1 at all
    with (
        socket.create_connection(server.address, timeout=TIMEOUT) as raw,
        pytest.raises(ssl.SSLError) as refused,
    ):
        old.wrap_socket(raw, server_hostname="127.0.0.1")
    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value)  # the server said no


@pytest.mark.requirement("ABP-TLS-3")
def test_a_plaintext_client_on_the_tls_port_is_closed_without_an_answer(
    spawn_server: SpawnServer, pki: Pki
) -> None:
    server = spawn_server("--port", "0", *pki.flags())
    received = b""
    with socket.create_connection(server.address, timeout=TIMEOUT) as sock:
        sock.sendall(b"fnd:plain\n")
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except ConnectionResetError:
            pass
    assert b"ERROR" not in received
    assert b"OK" not in received
    assert tls_exchange(server.address, pki.client_context(), b"fnd:after\n") == [
        b"ERROR: No entry for after\n"
    ]
    assert server.signal(signal.SIGTERM) == 0
    assert "Traceback" not in server.stderr()


@pytest.mark.requirement("ABP-TLS-4")
def test_client_certificates_are_required_with_a_client_ca(
    spawn_server: SpawnServer, pki: Pki, tmp_path: Path
) -> None:
    clients = trustme.CA()
    clients_file = tmp_path / "clients-ca.pem"
    clients.cert_pem.write_to_path(str(clients_file))
    server = spawn_server("--port", "0", *pki.flags(), "--tls-client-ca", str(clients_file))

    assert no_abp_bytes(server.address, pki.client_context()) == b""  # no certificate
    stranger = pki.client_context()
    trustme.CA().issue_cert("mallory@example.invalid").configure_cert(stranger)
    assert no_abp_bytes(server.address, stranger) == b""  # signed by another CA

    member = pki.client_context()
    clients.issue_cert("alice@example.invalid").configure_cert(member)
    assert tls_exchange(server.address, member, b"fnd:secret\n") == [
        b"ERROR: No entry for secret\n"
    ]


def stop_and_read(server: Spawned) -> str:
    assert server.signal(signal.SIGTERM) == 0
    return server.stderr()


@pytest.mark.requirement("ABP-TLS-5")
def test_no_warning_beyond_loopback_with_tls(spawn_server: SpawnServer, pki: Pki) -> None:
    """The warning is for plain TCP only (its test: tests/test_program_conventions.py).
    Binds 0.0.0.0 but connects only to 127.0.0.1."""
    secured = spawn_server("--host", "0.0.0.0", "--port", "0", *pki.flags())
    assert tls_exchange(("127.0.0.1", secured.port), pki.client_context(), b"fnd:w\n") == [
        b"ERROR: No entry for w\n"
    ]
    assert stop_and_read(secured) == ""


def test_unusable_tls_files_are_one_line(tmp_path: Path, pki: Pki) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    for flags, status in (
        (["--tls-cert", str(bogus), "--tls-key", str(pki.key)], 1),
        (["--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(pki.key)], 1),
        (["--tls-cert", str(pki.cert)], 2),
        (["--tls-client-ca", str(pki.ca_file)], 2),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "reference_server", "--port", "0", *flags],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=20,
            check=False,
        )
        assert result.returncode == status, (flags, result.stderr)
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith("abp-server: error: ")
    assert not (tmp_path / "abp-book.sqlite3").exists()  # refused before the book


@pytest.mark.requirement("ABP-TLS-1")
def test_busy_refusal_and_closing_clients_over_tls(spawn_server: SpawnServer, pki: Pki) -> None:
    """ABP-CONN-8 inside TLS; clients that close (close_notify) leave no log line."""
    server = spawn_server("--port", "0", "--max-conns", "1", *pki.flags())
    context = pki.client_context()
    with (
        socket.create_connection(server.address, timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as first,
    ):
        first.sendall(b"fnd:one\n")
        assert first.recv(100) == b"ERROR: No entry for one\n"
        with (
            socket.create_connection(server.address, timeout=TIMEOUT) as raw2,
            context.wrap_socket(raw2, server_hostname="127.0.0.1") as second,
        ):
            received = b""
            while chunk := second.recv(100):
                received += chunk
            assert received == b"ERROR: Server busy\n"
    deadline = time.monotonic() + TIMEOUT  # the server sees the first close soon after
    answer = [b"ERROR: Server busy\n"]
    while answer == [b"ERROR: Server busy\n"] and time.monotonic() < deadline:
        answer = tls_exchange(server.address, context, b"fnd:two\n")
    assert answer == [b"ERROR: No entry for two\n"]
    assert stop_and_read(server) == ""
