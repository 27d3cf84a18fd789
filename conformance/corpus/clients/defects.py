"""The registry of broken clients: each is the correct ``Client`` with one defect.

A defect is a subclass overriding one step of ``base.Client``, registered
with the requirement of docs/spec.md the client suite must fail it on.
``correct`` is the control: no defect, the suite must pass it.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from conformance.corpus.clients.base import EXIT_ERROR_ANSWER, EXIT_OK, Client


@dataclass(frozen=True)
class Defect:
    name: str
    summary: str
    requirement: str  # the suite must FAIL this one
    client: type[Client]


DEFECTS: dict[str, Defect] = {}


def defect(name: str, summary: str, requirement: str) -> Callable[[type[Client]], type[Client]]:
    def register(cls: type[Client]) -> type[Client]:
        DEFECTS[name] = Defect(name, summary, requirement, cls)
        return cls

    return register


defect("correct", "no defect: the control, passes everything", "")(Client)


@defect("no-terminator", "sends its request with no LF, as the tutorial does", "ABP-FRAME-2")
class NoTerminator(Client):
    terminator = b""


@defect("one-recv", "takes one recv() as the whole answer", "ABP-FRAME-7")
class OneRecv(Client):
    def read_answer(self, sock: socket.socket) -> bytes:
        return sock.recv(1024).rstrip(b"\r\n")


@defect("exit-0-on-error", "prints an ERROR answer and exits 0", "ABP-CLIENT-3")
class ExitZeroOnError(Client):
    error_status = EXIT_OK


@defect(
    "traceback-on-refused",
    "catches no network error: dies with a traceback on connection refused",
    "ABP-CLIENT-4",
)
class TracebackOnRefused(Client):
    network_errors = ()


@defect("no-timeout", "waits forever for an answer", "ABP-CONN-10")
class NoTimeout(Client):
    def connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port))  # no timeout at all


@defect("mangles-colon", "escapes ':' in the entry as '\\:'", "ABP-REQ-12")
class ManglesColon(Client):
    def request_line(self, op: str, name: str, entry: str) -> bytes:
        return super().request_line(op, name, entry.replace(":", "\\:"))


@defect("no-validation", "sends any name, empty or with ',' CR LF", "ABP-REQ-13")
class NoValidation(Client):
    def validate(self, op: str, name: str, entry: str) -> str | None:
        return None


@defect("fire-and-forget", "sends the request and closes without reading the answer", "ABP-CONN-9")
class FireAndForget(Client):
    def exchange(self, sock: socket.socket, data: bytes) -> bytes | None:
        sock.sendall(data)
        return None


@defect("bare-ok-is-error", "takes a bare 'OK' for an error", "ABP-RESP-6")
class BareOkIsError(Client):
    def show(self, op: str, answer: bytes) -> int:
        if answer == b"OK":
            print("unexpected answer: OK", file=sys.stderr)
            return EXIT_ERROR_ANSWER
        return super().show(op, answer)


@defect("ipv4-only", "opens an AF_INET socket whatever the host: no IPv6", "ABP-TRANSPORT-2")
class Ipv4Only(Client):
    def connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect((self.host, self.port))
        except BaseException:
            sock.close()
            raise
        return sock
