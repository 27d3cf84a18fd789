"""A small, correct argv-contract client on raw sockets: the corpus's control.

Each step the defects break is a method: validating the input (ABP-REQ-13),
building the request line, connecting, reading the answer up to its LF or the
end of the stream (ABP-FRAME-7, ABP-FRAME-8), and showing it (ABP-CLIENT-2,
ABP-CLIENT-3). Network failures are one line on stderr and exit 2
(ABP-CLIENT-4); every wait is bounded by ``timeout`` (ABP-CONN-10).
"""

from __future__ import annotations

import socket
import sys

EXIT_OK = 0
EXIT_ERROR_ANSWER = 1
EXIT_NETWORK = 2
EXIT_USAGE = 64


class Client:
    terminator = b"\n"
    error_status = EXIT_ERROR_ANSWER
    #: What counts as a network failure (a message and exit 2, not a traceback).
    network_errors: tuple[type[BaseException], ...] = (OSError, ConnectionError)

    def __init__(self, host: str, port: int, timeout: float | None) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout

    # -- the steps
    def validate(self, op: str, name: str, entry: str) -> str | None:
        if op not in ("add", "rem", "fnd"):
            return f"unknown operation {op!r}"
        if not name or any(c in name for c in ",\r\n\0"):
            return f"invalid name {name!r}: non-empty, no ',', CR, LF or NUL"
        if any(c in entry for c in "\r\n\0"):
            return f"invalid entry {entry!r}: no CR, LF or NUL"
        if op != "add" and entry:
            return f"{op} takes no entry"
        return None

    def request_line(self, op: str, name: str, entry: str) -> bytes:
        text = f"add:{name},{entry}" if op == "add" else f"{op}:{name}"
        return text.encode("utf-8") + self.terminator

    def connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=self.timeout)

    def exchange(self, sock: socket.socket, data: bytes) -> bytes | None:
        sock.sendall(data)
        return self.read_answer(sock)

    def read_answer(self, sock: socket.socket) -> bytes:
        buffer = b""
        while b"\n" not in buffer:
            chunk = sock.recv(4096)
            if not chunk:
                if not buffer:
                    raise ConnectionError("the server closed the connection before answering")
                return buffer  # a legacy answer, ended by the end of the stream
            buffer += chunk
        line = buffer[: buffer.index(b"\n")]
        return line[:-1] if line.endswith(b"\r") else line

    def show(self, op: str, answer: bytes) -> int:
        text = answer.decode("utf-8", "replace")
        if text.startswith("ERROR:"):
            print(text, file=sys.stderr)
            return self.error_status
        if text == "OK":
            print("OK")
        elif text.startswith("OK: "):
            print(text[len("OK: ") :])
        else:
            print(text)  # free text from a legacy server
        return EXIT_OK

    # -- the whole run
    def run(self, op: str, name: str, entry: str) -> int:
        problem = self.validate(op, name, entry)
        if problem is not None:
            print(f"client: {problem}", file=sys.stderr)
            return EXIT_USAGE
        data = self.request_line(op, name, entry)
        try:
            sock = self.connect()
            with sock:
                answer = self.exchange(sock, data)
        except self.network_errors as exc:
            print(f"client: {self.host}:{self.port}: {exc}", file=sys.stderr)
            return EXIT_NETWORK
        if answer is None:
            return EXIT_OK
        return self.show(op, answer)
