"""The two ways a client under test is driven (docs/spec.md section 8).

argv contract: a command template with ``{host} {port} {op} {name} {entry}``;
one run per operation. Menu contract: a tutorial-style interactive client fed
the tutorial's menu on stdin (``1`` add: name, house number, street, town,
phone; ``2`` delete; ``3`` find; ``4`` quit); one run performs a whole list of
operations. Such clients often hard-code their server's address: when the
menu template has no ``{port}``, the suite's server listens on the
``--listen`` address (default 127.0.0.1:2007) and tests take turns on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from conformance.harness.process import render, wait_until
from conformance.harness.wire import Transcript
from conformance.suites.client.launch import ClientRun, run_client
from protocol import DEFAULT_HOST, DEFAULT_PORT

CONTRACTS = ("argv", "menu")
#: Menu choices (ABP-CLIENT-5, ABP-CLIENT-6).
MENU_CHOICE = {"add": "1", "rem": "2", "fnd": "3"}
MENU_QUIT = "4"


@dataclass(frozen=True)
class Address:
    """What the menu's ``1`` asks for after the name (ABP-CLIENT-5)."""

    number: str
    street: str
    town: str
    phone: str

    @property
    def entry(self) -> str:
        """The entry a menu client builds: ``NUMBER STREET, TOWN, PHONE``."""
        return f"{self.number} {self.street}, {self.town}, {self.phone}"


@dataclass(frozen=True)
class Op:
    """One operation for the client to perform."""

    op: str  # add, rem or fnd
    name: str
    entry: str = ""
    address: Address | None = None  # how a menu client is told the entry of an add

    @staticmethod
    def add(name: str, address: Address) -> Op:
        return Op("add", name, address.entry, address)

    def menu_lines(self) -> list[str]:
        choice = MENU_CHOICE[self.op]
        if self.op != "add":
            return [choice, self.name]
        if self.address is None:
            raise ValueError("a menu client can only add an entry given as an Address")
        a = self.address
        return [choice, self.name, a.number, a.street, a.town, a.phone]


@dataclass(frozen=True)
class Outcome:
    """The runs one ``perform`` took: one per operation (argv) or one (menu)."""

    contract: str
    runs: tuple[ClientRun, ...]

    @property
    def output(self) -> str:
        return "".join(run.output for run in self.runs)

    @property
    def stdout(self) -> str:
        return "".join(run.stdout for run in self.runs)

    def describe(self) -> str:
        return "\n".join(run.describe() for run in self.runs)

    def hung(self) -> ClientRun | None:
        return next((run for run in self.runs if run.timed_out), None)


def menu_script(ops: Sequence[Op], extra: Sequence[str] = (), *, quit_: bool = True) -> str:
    """The stdin that makes a menu client perform ``ops`` (then ``extra`` lines, then quit)."""
    lines = [line for op in ops for line in op.menu_lines()]
    lines.extend(extra)
    if quit_:
        lines.append(MENU_QUIT)
    return "".join(line + "\n" for line in lines)


class ClientUnderTest:
    """A client command and its contract."""

    contract = ""

    def __init__(
        self, template: str, *, deadline: float, listen: tuple[str, int] | None = None
    ) -> None:
        self.template = template
        self.deadline = deadline
        self.listen = listen or (DEFAULT_HOST, DEFAULT_PORT)
        argv = render(template, host="h", port=1, op="fnd", name="n", entry="")  # fail fast
        if not argv:
            raise ValueError("the command is empty")
        if shutil.which(argv[0]) is None:
            raise ValueError(f"cannot find the program {argv[0]!r} (not on PATH or not executable)")

    @property
    def takes_address(self) -> bool:
        """True when the template says where to connect (``{port}``)."""
        return "{port}" in self.template

    def listen_port(self) -> int:
        """0 (any free port) when the template takes the address, else --listen's."""
        return 0 if self.takes_address else self.listen[1]

    def perform(self, host: str, port: int, ops: Sequence[Op], transcript: Transcript) -> Outcome:
        raise NotImplementedError


class ArgvClient(ClientUnderTest):
    contract = "argv"

    def __init__(
        self, template: str, *, deadline: float, listen: tuple[str, int] | None = None
    ) -> None:
        super().__init__(template, deadline=deadline, listen=listen)
        if not self.takes_address:
            raise ValueError("an argv-contract template needs {port} (and {host})")

    def argv(self, host: str, port: int, op: Op) -> list[str]:
        return render(self.template, host=host, port=port, op=op.op, name=op.name, entry=op.entry)

    def perform(self, host: str, port: int, ops: Sequence[Op], transcript: Transcript) -> Outcome:
        runs = tuple(
            run_client(self.argv(host, port, op), deadline=self.deadline, transcript=transcript)
            for op in ops
        )
        return Outcome(self.contract, runs)


class MenuClient(ClientUnderTest):
    contract = "menu"

    def argv(self, host: str, port: int) -> list[str]:
        return render(self.template, host=host, port=port)

    def perform(self, host: str, port: int, ops: Sequence[Op], transcript: Transcript) -> Outcome:
        return self.run_script(host, port, menu_script(ops), transcript)

    def run_script(self, host: str, port: int, stdin: str, transcript: Transcript) -> Outcome:
        run = run_client(
            self.argv(host, port), deadline=self.deadline, stdin=stdin, transcript=transcript
        )
        return Outcome(self.contract, (run,))


def make_client(
    contract: str, template: str, *, deadline: float, listen: tuple[str, int] | None = None
) -> ClientUnderTest:
    if contract == "argv":
        return ArgvClient(template, deadline=deadline, listen=listen)
    if contract == "menu":
        return MenuClient(template, deadline=deadline, listen=listen)
    raise ValueError(f"unknown client contract {contract!r}; use one of {CONTRACTS}")


class AddressBusy(RuntimeError):
    """Another test kept the fixed --listen address for too long."""


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def address_lock(host: str, port: int, timeout: float = 300.0) -> Iterator[None]:
    """Tests that must listen on one fixed address take turns, across xdist
    workers too (an advisory lock file per address)."""
    safe = host.replace(":", "_").replace("/", "_")
    path = Path(tempfile.gettempdir()) / f"abp-client-suite-{safe}-{port}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not wait_until(lambda: _try_lock(fd), timeout, interval=0.02):
            raise AddressBusy(f"{host}:{port} stayed in use by another test for {timeout:g}s")
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
