"""ABP over TLS, the suite's side (docs/spec.md section 9): how it reaches a TLS target.

A target named ``tls://HOST:PORT`` (``conformance run --server``, the plugin's
``--abp-server``, ``conformance bench --server``) is reached through one
``TlsSettings``: the CA that signed the server's certificate (the system's
trust store when none is given), the suite's own certificate and key for a
server that verifies clients, and whether it does. Every connection the
suite opens (``Wire``, ``Crowd``, the framing probe, the reachability check,
private servers of ``--server-cmd``) starts with a handshake made from it,
and then carries ABP/1 unchanged.

TLS has no half-close: a ``close_notify`` ends the session (spec section 9),
so the tests of ABP-FRAME-5 do not apply over TLS.
"""

from __future__ import annotations

import functools
import re
import socket
import ssl
from dataclasses import dataclass

SCHEME = "tls://"


class TlsSetupError(ValueError):
    """A CA, certificate or key file that cannot be used (one line). ``option``
    names the option at fault without its prefix (``ca``, ``cert``...), so
    that each front end names it its own way (``render``)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"--{option} {message}")
        self.option = option
        self.message = message

    def render(self, prefix: str = "--") -> str:
        """The message with the option as the user spelt it (``--abp-`` in pytest)."""
        return f"{prefix}{self.option} {self.message}"


def split_target(text: str) -> tuple[str, bool]:
    """``tls://HOST:PORT`` -> (``HOST:PORT``, True); anything else unchanged, False."""
    if text[: len(SCHEME)].lower() == SCHEME:
        return text[len(SCHEME) :], True
    return text, False


def describe(exc: BaseException) -> str:
    """An ``ssl`` error in one line, without OpenSSL's source location."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.replace("_", " ").lower()
    if isinstance(exc, TimeoutError):
        return "no handshake before the deadline"
    text = re.sub(r"\s*\(_ssl\.c:\d+\)", "", str(exc)).strip()
    return text or type(exc).__name__


@dataclass(frozen=True)
class TlsSettings:
    """How the suite speaks TLS to the target."""

    ca: str | None = None  # PEM file of the CA(s) to trust; None: the system's
    cert: str | None = None  # the suite's certificate (chain), PEM
    key: str | None = None  # its private key, PEM (None: inside ``cert``)
    client_auth: bool = False  # the target verifies client certificates (ABP-TLS-4)

    def context(self) -> ssl.SSLContext:
        """The client context (made once per settings); ``TlsSetupError`` when a
        file cannot be used."""
        return _context(self)

    def check(self) -> None:
        """Load every file now, so that a bad one is a usage error before the run."""
        if self.key is not None and self.cert is None:
            raise TlsSetupError("key", f"{self.key}: a key needs its certificate (the cert option)")
        if self.client_auth and self.cert is None:
            raise TlsSetupError(
                "tls-client-auth",
                "needs a client certificate the server accepts (the cert and key options),"
                " for every other test",
            )
        self.context()

    def wrap(self, sock: socket.socket, host: str) -> ssl.SSLSocket:
        """The TLS session over a connected blocking socket: the handshake runs
        now, under the socket's timeout (``ssl.SSLError``, ``OSError``)."""
        return self.context().wrap_socket(sock, server_hostname=host)

    def wrap_later(self, sock: socket.socket, host: str) -> ssl.SSLSocket:
        """Over a non-blocking socket: the caller drives ``do_handshake()``."""
        return self.context().wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)


@functools.cache
def _context(settings: TlsSettings) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.ca)
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError("ca", f"{settings.ca}: {_file_problem(exc)}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.cert is not None:
        try:
            context.load_cert_chain(settings.cert, settings.key)
        except (OSError, ssl.SSLError) as exc:
            raise TlsSetupError("cert", f"{settings.cert}: {_file_problem(exc)}") from None
    return context


def _file_problem(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"not a usable PEM file ({describe(exc)})"
    return exc.strerror or describe(exc)


def session_note(sock: socket.socket) -> str:
    """What the transcript says about a new TLS session."""
    if not isinstance(sock, ssl.SSLSocket):
        return ""
    cipher = sock.cipher()
    return f"TLS session: {sock.version()}" + (f", {cipher[0]}" if cipher else "")


#: what ``conformance run --tls`` needs to make its throw-away certificates
PKI_NEEDS = "trustme (pip install 'abp-toolkit[tls]')"


def throwaway_pki(
    directory: str, *, client_auth: bool = False, hosts: tuple[str, ...] = ("127.0.0.1",)
) -> tuple[list[str], TlsSettings]:
    """A CA made for this run only, a server certificate it signed for
    ``hosts``, and with ``client_auth`` a second CA and a client certificate,
    written as PEM files into ``directory``: the reference server's TLS
    options, and the suite's settings to reach it. Nothing is kept after the
    run; no key is ever committed. ``TlsSetupError`` when ``trustme`` is missing."""
    try:
        import trustme
    except ImportError:
        raise TlsSetupError("tls", f"needs {PKI_NEEDS}") from None
    from pathlib import Path

    where = Path(directory)
    ca = trustme.CA(organization_name="abp-conformance throw-away CA")
    server = ca.issue_cert(*hosts, "localhost")
    server.private_key_and_cert_chain_pem.write_to_path(str(where / "server.pem"))
    ca.cert_pem.write_to_path(str(where / "ca.pem"))
    flags = ["--tls-cert", str(where / "server.pem"), "--tls-key", str(where / "server.pem")]
    settings = TlsSettings(ca=str(where / "ca.pem"))
    if client_auth:
        clients = trustme.CA(organization_name="abp-conformance throw-away client CA")
        clients.cert_pem.write_to_path(str(where / "clients-ca.pem"))
        client = clients.issue_cert("abp-conformance@example.invalid")
        client.private_key_and_cert_chain_pem.write_to_path(str(where / "client.pem"))
        flags += ["--tls-client-ca", str(where / "clients-ca.pem")]
        settings = TlsSettings(ca=settings.ca, cert=str(where / "client.pem"), client_auth=True)
    return flags, settings


def stranger_certificate(directory: str) -> str | None:
    """A client certificate and key (one PEM file) signed by a CA made just
    now, which no server trusts; None without ``trustme``."""
    try:
        import trustme
    except ImportError:
        return None
    from pathlib import Path

    path = Path(directory) / "stranger.pem"
    stranger = trustme.CA().issue_cert("mallory@example.invalid")
    stranger.private_key_and_cert_chain_pem.write_to_path(str(path))
    return str(path)
