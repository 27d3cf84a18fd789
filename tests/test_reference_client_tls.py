"""abp-client over TLS (issue 10, the TLS profile, client side): ``--tls``,
``--ca``, ``--cert``/``--key``.

The server is a small TLS listener made here (a scripted thread on 127.0.0.1,
port 0, wrapping each connection with ``ssl``), and the reference server with
``--tls-cert``/``--tls-key``/``--tls-client-ca``; the CA and certificates are
throw-away ones made by ``trustme`` in the test's temporary directory, so no
key is ever committed.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from client_process import run_client
from scripted_server import Peer, Script, ScriptedServer, read_line

from conformance.harness.process import ServerProcess, reference_server_command


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def files(ca: trustme.CA, tmp_path: Path) -> dict[str, Path]:
    """The CA's certificate and a client certificate and key, as PEM files."""
    paths = {
        "ca": tmp_path / "ca.pem",
        "cert": tmp_path / "client.pem",
        "key": tmp_path / "key.pem",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    client = ca.issue_cert("client@example.test")
    client.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    client.private_key_pem.write_to_path(str(paths["key"]))
    return paths


def tls_server(ca: trustme.CA, *, require_client_cert: bool = False) -> Script:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    ca.issue_cert("127.0.0.1", "localhost", "::1").configure_cert(context)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(context)

    def script(conn: Peer) -> None:
        with context.wrap_socket(conn.sock, server_side=True) as tls:
            wrapped = Peer(tls, bytearray(), threading.Lock())
            line = read_line(wrapped)
            tls.sendall(b"OK: over TLS, got " + line.strip() + b"\n")
            read_line(wrapped)  # until the client closes

    return script


@pytest.fixture
def server(ca: trustme.CA) -> Iterator[ScriptedServer]:
    scripted = ScriptedServer(tls_server(ca))
    yield scripted
    scripted.stop()


def at(server: ScriptedServer) -> list[str]:
    return ["--server", f"127.0.0.1:{server.port}"]


def test_tls_with_the_servers_ca(server: ScriptedServer, files: dict[str, Path]) -> None:
    result = run_client(*at(server), "--tls", "--ca", str(files["ca"]), "fnd", "bob")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "over TLS, got fnd:bob\n",
        "",
    )


def test_tls_options_after_the_command_and_trace(
    server: ScriptedServer, files: dict[str, Path]
) -> None:
    result = run_client(*at(server), "fnd", "bob", "--tls", "--trace", "--ca", str(files["ca"]))
    assert result.returncode == 0, result.stderr
    assert "-- TLS TLSv1." in result.stderr


def test_an_unknown_ca_is_refused(server: ScriptedServer) -> None:
    """Without --ca the system's CAs are used, and they do not know this one."""
    result = run_client(*at(server), "--tls", "fnd", "bob")
    assert result.returncode == 3
    assert len(result.stderr.splitlines()) == 1
    assert "TLS handshake with 127.0.0.1:" in result.stderr
    assert "certificate" in result.stderr


def test_client_certificate(ca: trustme.CA, files: dict[str, Path]) -> None:
    scripted = ScriptedServer(tls_server(ca, require_client_cert=True))
    try:
        base = [*at(scripted), "--tls", "--ca", str(files["ca"])]
        refused = run_client(*base, "fnd", "bob")
        assert refused.returncode == 3
        assert len(refused.stderr.splitlines()) == 1, refused.stderr
        assert "Traceback" not in refused.stderr
        accepted = run_client(
            *base, "--cert", str(files["cert"]), "--key", str(files["key"]), "fnd", "bob"
        )
        assert (accepted.returncode, accepted.stdout) == (0, "over TLS, got fnd:bob\n")
    finally:
        scripted.stop()


def test_tls_against_a_plaintext_server() -> None:
    def plain(conn: Peer) -> None:
        conn.sendall(b"ERROR: Invalid UTF-8\n")
        read_line(conn)

    scripted = ScriptedServer(plain)
    try:
        result = run_client(*at(scripted), "--tls", "--timeout", "2", "fnd", "bob")
    finally:
        scripted.stop()
    assert result.returncode == 3
    assert len(result.stderr.splitlines()) == 1
    assert "TLS handshake with" in result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--ca", "ca.pem"], "--ca needs --tls"),
        (["--tls", "--cert", "client.pem"], "--cert and --key go together"),
        (["--tls", "--ca", "missing.pem"], "cannot use the TLS files"),
        (["--tls", "--half-close"], "--half-close cannot be used with --tls"),
    ],
)
def test_tls_usage_errors(files: dict[str, Path], args: list[str], words: str) -> None:
    named = {"ca.pem": files["ca"], "client.pem": files["cert"]}
    args = [str(named[a]) if a in named else a for a in args]
    result = run_client("--server", "127.0.0.1:9", *args, "fnd", "bob")
    assert result.returncode == 2
    assert words in result.stderr
    assert len(result.stderr.splitlines()) == 1


# ------------------------------------------------ against the reference server


def test_against_the_reference_server_over_tls(ca: trustme.CA, tmp_path: Path) -> None:
    """The reference pair over TLS, with client-certificate verification on."""
    cert, key, ca_file = tmp_path / "server.crt", tmp_path / "server.key", tmp_path / "ca.pem"
    issued = ca.issue_cert("127.0.0.1", "localhost")
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    client = ca.issue_cert("client@example.test")
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.crt"))
    client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    flags = ["--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca", str(ca_file)]
    command = reference_server_command("--db", str(tmp_path / "book.sqlite3"), *flags)
    with ServerProcess(command) as server:
        base = ["--server", f"127.0.0.1:{server.port}", "--tls", "--ca", str(ca_file)]
        mine = ["--cert", str(tmp_path / "client.crt"), "--key", str(tmp_path / "client.key")]
        added = run_client(*base, *mine, "add", "tess", "1 Secure Rd")
        assert added.returncode == 0, added.stderr
        found = run_client(*base, *mine, "fnd", "tess")
        assert (found.returncode, found.stdout) == (0, "1 Secure Rd\n"), found.stderr
        refused = run_client(*base, "fnd", "tess")  # no client certificate
        assert refused.returncode == 3
        assert "client certificate" in refused.stderr
        plain = run_client("--server", f"127.0.0.1:{server.port}", "fnd", "tess")
        assert plain.returncode == 3
        assert len(plain.stderr.splitlines()) == 1
