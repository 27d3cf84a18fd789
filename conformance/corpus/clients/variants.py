"""The acquittal corpus of clients: correct ones, one allowed choice apart from the reference.

Each is ``base.Client`` with one step overridden, registered with the choice it
makes and the words of docs/spec.md that allow it. The client suite must pass
every one of them (``tests/test_corpus_acquittal.py``); ``warns`` names the
SHOULDs a variant knowingly skips, the only WARNs it may get. Run one with
``python -m conformance.corpus.clients --variant NAME HOST PORT OP NAME
[ENTRY]``, or, for a menu-contract variant, ``--variant NAME HOST PORT``
with the menu on standard input.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from conformance.corpus.clients.base import EXIT_NETWORK, EXIT_OK, Client


@dataclass(frozen=True)
class Variant:
    name: str
    choice: str  # what it does that the reference client does not
    allowed_by: str  # the words of docs/spec.md that allow it, quoted verbatim
    requirements: tuple[str, ...]  # where those words are
    client: type[Client]
    contract: str = "argv"  # or "menu"
    warns: tuple[str, ...] = ()  # SHOULDs it does not follow: WARNs expected


VARIANTS: dict[str, Variant] = {}


def variant(
    name: str,
    choice: str,
    allowed_by: str,
    *requirements: str,
    contract: str = "argv",
    warns: tuple[str, ...] = (),
) -> Callable[[type[Client]], type[Client]]:
    def register(cls: type[Client]) -> type[Client]:
        VARIANTS[name] = Variant(name, choice, allowed_by, requirements, cls, contract, warns)
        return cls

    return register


@variant(
    "crlf-requests",
    "ends every request with CR LF",
    "A client MUST terminate every request it sends with LF (a CR before the LF is allowed)",
    "ABP-FRAME-2",
)
class CrlfRequests(Client):
    terminator = b"\r\n"


@variant(
    "byte-reads",
    "reads the answer one byte per recv()",
    "A client MUST read a response up to its LF, whatever the segmentation",
    "ABP-FRAME-7",
)
class ByteReads(Client):
    def read_answer(self, sock: socket.socket) -> bytes:
        line = bytearray()
        while True:
            byte = sock.recv(1)
            if not byte:
                if not line:
                    raise ConnectionError("the server closed the connection before answering")
                return bytes(line)  # a legacy answer, ended by the end of the stream
            if byte == b"\n":
                return bytes(line[:-1] if line.endswith(b"\r") else line)
            line += byte


#: The read size of ``big-reads``: far more than any answer (8192 bytes, ABP-FRAME-14).
BIG_READ = 1 << 20


@variant(
    "big-reads",
    f"reads with a {BIG_READ}-byte buffer",
    "A client MUST read a response up to its LF, whatever the segmentation",
    "ABP-FRAME-7",
    "ABP-FRAME-14",
)
class BigReads(Client):
    def read_answer(self, sock: socket.socket) -> bytes:
        buffer = bytearray()
        while b"\n" not in buffer:
            chunk = sock.recv(BIG_READ)
            if not chunk:
                if not buffer:
                    raise ConnectionError("the server closed the connection before answering")
                return bytes(buffer)
            buffer += chunk
        line = bytes(buffer[: buffer.index(b"\n")])
        return line.removesuffix(b"\r")


@variant(
    "text-lines",
    "reads the answer as text through a file that ends a line at LF only, so an entry "
    "keeps every character it may hold (VT, FF, NEL, U+2028 included)",
    "ENTRY is any string that holds no CR, LF or NUL",
    "section 3",
    "ABP-RESP-6",
)
class TextLines(Client):
    def read_answer(self, sock: socket.socket) -> bytes:
        with sock.makefile("r", encoding="utf-8", errors="surrogateescape", newline="\n") as f:
            line = f.readline(1 << 16)
        if not line:
            raise ConnectionError("the server closed the connection before answering")
        text = line.removesuffix("\n").removesuffix("\r") if line.endswith("\n") else line
        return text.encode("utf-8", "surrogateescape")


@variant(
    "comma-in-name-sent",
    "sends a `,` in a rem/fnd NAME unchanged (`fnd:Smith, John`); still refuses one in an add",
    "A client SHOULD also refuse, without sending anything, a `rem` or `fnd` NAME that holds `,`",
    "ABP-REQ-14",
    warns=("ABP-REQ-14",),
)
class CommaInNameSent(Client):
    def validate(self, op: str, name: str, entry: str) -> str | None:
        if op != "add":  # rem and fnd take the whole rest of the line as NAME
            name = name.replace(",", ";")  # so a ',' is judged like any character
        return super().validate(op, name, entry)


MENU = "\n1) Add Entry\n2) Delete Entry\n3) Find Entry\n4) Quit\n"


@variant(
    "connection-per-request",
    "menu contract: a new connection for every request, closed after its answer",
    "A connection MUST carry any number of requests, one after the other, until the "
    "client closes it.",
    "ABP-CONN-1",
    "ABP-CONN-9",
    contract="menu",
)
class ConnectionPerRequest(Client):
    """The tutorial's menu, each request on a connection of its own (as the
    tutorial's client does), but LF-terminated and read up to the LF."""

    def menu(self) -> int:
        while True:
            print(MENU, flush=True)
            choice = sys.stdin.readline()
            if not choice:
                return EXIT_OK  # end of input: as good as 4
            choice = choice.strip()
            if choice == "4":
                return EXIT_OK
            if choice not in ("1", "2", "3"):
                continue  # the menu again, nothing sent (ABP-CLIENT-7)
            name = self.ask("Enter the name: ")
            if choice == "1":
                fields = [self.ask(f"Enter the {what}: ") for what in FIELDS]
                entry = f"{fields[0]} {fields[1]}, {fields[2]}, {fields[3]}"
                self.perform("add", name, entry)
            else:
                self.perform("rem" if choice == "2" else "fnd", name, "")

    @staticmethod
    def ask(prompt: str) -> str:
        print(prompt, end="", flush=True)
        return sys.stdin.readline().removesuffix("\n")

    def perform(self, op: str, name: str, entry: str) -> None:
        status = self.run(op, name, entry)  # connect, one request, its answer, close
        if status == EXIT_NETWORK:
            print("(no answer: see the message above)", flush=True)
        sys.stdout.flush()


FIELDS = ("house number", "street name", "town", "phone number")
