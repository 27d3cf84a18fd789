"""Section 9 of docs/spec.md: ABP over TLS.

Run with a TLS target (``conformance run --server tls://HOST:PORT --ca FILE``,
or ``conformance run --tls`` for the embedded server), every other test of
the suite already goes through TLS: that is most of ABP-TLS-1 ("the same
ABP/1 inside"). The tests here are the rest of what a client can see on the
wire: no protocol older than TLS 1.2, a plaintext client closed without an
answer, and (told with ``--tls-client-auth`` that the server verifies client
certificates) a client without a valid certificate refused before any ABP
byte. Against a plain TCP target they are skipped.

ABP-TLS-5 (the warning on a non-loopback address without TLS) is a
requirement on the server program, tested by the project's own tests.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import tempfile
import time
import warnings
from collections.abc import Iterator

import pytest

from conformance.harness.lines import LineOverflow
from conformance.harness.raw import RawConnection
from conformance.harness.timing import UNSOLICITED, budget
from conformance.harness.tls import TlsSettings, describe, stranger_certificate
from conformance.harness.wire import WireError
from conformance.judging.session import ANY_OK, ServerSession, decode
from conformance.judging.verdict import fail
from protocol import Add, Error, Find, Ok
from protocol.codec import encode_request, no_entry

#: protocol versions a server MUST refuse (ABP-TLS-2), as ``ssl`` names them
OLD_VERSIONS = ("TLSv1", "TLSv1_1")


@pytest.fixture(autouse=True)
def tls_target(abp: ServerSession) -> TlsSettings:
    """The target's TLS settings; every test here is skipped for a plain target."""
    if abp.target.tls is None:
        pytest.skip("the target is plain TCP: give --server tls://HOST:PORT (or --tls)")
    return abp.target.tls


@pytest.mark.requirement("ABP-TLS-1")
def test_abp_1_unchanged_inside_the_tls_session(abp: ServerSession) -> None:
    """ABP-TLS-1: "... every connection to that port MUST start with a TLS
    handshake, and inside the session the server MUST speak ABP/1 unchanged
    from the first byte." No greeting; an add, a lookup and an unknown name
    answered byte for byte on one session."""
    conn = abp.raw("ABP-TLS-1")
    sock = conn.wire.sock
    assert isinstance(sock, ssl.SSLSocket)
    unsolicited = conn.quiet_for(budget(UNSOLICITED, abp.target.timeout))
    if unsolicited:
        fail(
            "ABP-TLS-1",
            "the server sent bytes inside the session before any request",
            expected=b"",
            actual=unsolicited,
        )
    name, stranger = abp.name("tls"), abp.name("tls")
    conn.send(encode_request(Add(name, "1 Cipher Lane, Tls, 0100")))
    conn.send(encode_request(Find(name)) + encode_request(Find(stranger)))
    abp.expect_lines(
        "ABP-TLS-1",
        conn,
        [ANY_OK, Ok("1 Cipher Lane, Tls, 0100"), no_entry(stranger)],
        "add, fnd and fnd of an unknown name inside TLS",
    )


def _old_client(settings: TlsSettings, version: str) -> ssl.SSLContext | None:
    """A client context offering ``version`` and nothing later; None when the
    local OpenSSL can no longer offer it (checked without the network)."""
    with warnings.catch_warnings():  # asking for an old protocol is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the version is judged, not the certificate
        try:
            context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            context.maximum_version = getattr(ssl.TLSVersion, version)
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):
            return None
    if settings.cert is not None:
        context.load_cert_chain(settings.cert, settings.key)
    hello = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO())
    try:
        hello.do_handshake()
    except ssl.SSLWantReadError:
        return context  # a ClientHello was written: this OpenSSL can offer it
    except ssl.SSLError:
        return None  # NO_PROTOCOLS_AVAILABLE, or no cipher left for it
    return context


@contextlib.contextmanager
def _tcp(abp: ServerSession) -> Iterator[socket.socket]:
    sock = socket.create_connection((abp.target.host, abp.target.port), abp.target.timeout)
    with sock:
        yield sock


@pytest.mark.requirement("ABP-TLS-2")
@pytest.mark.parametrize("version", OLD_VERSIONS)
def test_a_client_offering_nothing_after_tls_1_1_is_refused(
    abp: ServerSession, tls_target: TlsSettings, version: str
) -> None:
    """ABP-TLS-2: "A server offering TLS MUST negotiate TLS 1.2 or a later
    version only, and MUST refuse a client that offers nothing later than TLS
    1.1." A client offering at most ``version`` gets no session."""
    context = _old_client(tls_target, version)
    if context is None:
        pytest.skip(f"this machine's OpenSSL cannot offer {version} any more")
    abp.transcript.note("o1", f"handshake offering at most {version}")
    with _tcp(abp) as tcp:
        try:
            with context.wrap_socket(tcp) as sock:
                got = sock.version()
        except TimeoutError:
            fail("ABP-TLS-2", f"no answer to a {version} handshake within {abp.target.timeout:g}s")
        except OSError as exc:  # an alert, a reset, the connection closed
            abp.transcript.note("o1", f"refused: {describe(exc)}")
            return
    fail("ABP-TLS-2", f"the server negotiated {got} with a client offering at most {version}")


@pytest.mark.requirement("ABP-TLS-2")
def test_the_negotiated_version_is_tls_1_2_or_later(
    abp: ServerSession, tls_target: TlsSettings
) -> None:
    """ABP-TLS-2: "... MUST negotiate TLS 1.2 or a later version only": a client
    offering every version this machine can gets TLS 1.2 or 1.3."""
    context = _old_client(tls_target, "MAXIMUM_SUPPORTED")
    if context is None:
        pytest.skip("this machine's OpenSSL offers no TLS at all")
    with _tcp(abp) as tcp:
        try:
            with context.wrap_socket(tcp) as sock:
                got = sock.version()
        except OSError as exc:
            fail("ABP-TLS-2", f"a client offering every version got no session: {describe(exc)}")
    abp.transcript.note("o1", f"negotiated {got}")
    if got not in ("TLSv1.2", "TLSv1.3"):
        fail("ABP-TLS-2", f"the server negotiated {got}", expected="TLSv1.2 or TLSv1.3", actual=got)


def _abp_answers(data: bytes) -> list[bytes]:
    """The lines of ``data`` that are ABP/1 answers."""
    return [line for line in data.split(b"\n") if isinstance(decode(line + b"\n"), Ok | Error)]


def _closed_without_abp(
    abp: ServerSession, requirement: str, conn: RawConnection, what: str
) -> None:
    """Fail ``requirement`` as soon as ``conn`` gets an ABP/1 answer, or when it
    stays open past the timeout; return once the server has closed it."""
    deadline = time.monotonic() + abp.target.timeout
    while True:
        received = bytes(conn.lines.buffer)
        if _abp_answers(received):
            fail(requirement, f"{what}: the server answered", expected=b"", actual=received)
        if conn.lines.eof:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            fail(requirement, f"{what}: the server did not close within {abp.target.timeout:g}s")
        try:
            conn.lines.fill(remaining)
        except WireError:  # reset, or a TLS alert: refused
            return
        except LineOverflow as exc:
            fail(requirement, f"{what}: {exc.count} bytes and no close", actual=exc.partial)


@pytest.mark.requirement("ABP-TLS-3")
@pytest.mark.parametrize("terminated", [True, False], ids=["line", "unterminated"])
def test_a_plaintext_client_is_closed_without_an_answer(
    abp: ServerSession, terminated: bool
) -> None:
    """ABP-TLS-3: "A server MUST close a connection to its TLS port whose first
    bytes are not a TLS handshake (a plaintext client) without sending any ABP
    answer, and without harm to the server or its other clients." """
    plain = abp.raw("ABP-TLS-3", tls=None)
    line = encode_request(Find(abp.name("plain")))
    plain.send(line if terminated else line.rstrip(b"\n"), "plaintext, on the TLS port")
    _closed_without_abp(abp, "ABP-TLS-3", plain, "a plaintext request")
    abp.probe()  # the server still serves TLS clients


@pytest.mark.requirement("ABP-TLS-4")
@pytest.mark.parametrize(
    "certificate", ["no certificate", "a certificate of an unknown CA"], ids=["none", "unknown-ca"]
)
def test_a_client_without_a_valid_certificate_is_refused(
    abp: ServerSession, tls_target: TlsSettings, certificate: str
) -> None:
    """ABP-TLS-4: "When client-certificate verification is configured, a server
    MUST refuse, in the handshake and before any ABP byte is read or answered,
    a client that presents no certificate or one that no configured CA
    signed." (TLS 1.3 finishes the client's side of the handshake before the
    server has judged its certificate: the refusal may come with the first read.)"""
    if not tls_target.client_auth:
        pytest.skip("the suite was not told the server verifies clients (--tls-client-auth)")
    with tempfile.TemporaryDirectory(prefix="abp-conformance-") as scratch:
        cert = None
        if certificate != "no certificate":
            cert = stranger_certificate(scratch)
            if cert is None:
                pytest.skip("a certificate from an unknown CA needs trustme")
        intruder = TlsSettings(ca=tls_target.ca, cert=cert)
        try:
            conn = abp.raw("ABP-TLS-4", tls=intruder, connect=False)
            conn.wire.connect()
        except WireError:
            return  # refused in the handshake
        try:
            conn.send(encode_request(Find(abp.name("intruder"))), "after the handshake")
        except WireError:
            return
        _closed_without_abp(abp, "ABP-TLS-4", conn, f"a client with {certificate}")
