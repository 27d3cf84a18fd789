"""``abp-client shell``: the tutorial's menu, driven entirely through stdin.

The menu contract of section 8 (ABP-CLIENT-5 .. ABP-CLIENT-7): ``1`` add (name,
house number, street, town, phone), ``2`` delete, ``3`` find, ``4`` quit. One
connection per command, as the tutorial's client does. Nothing ends the loop
but ``4`` or the end of stdin: bad choices, bad names and network failures
each get a message and the menu again.
"""

from __future__ import annotations

from typing import TextIO

from reference_client.link import NetworkError, Session
from reference_client.operations import InvalidInput, answer_text, make_request

MENU = "1) Add Entry\n2) Delete Entry\n3) Find Entry\n4) Quit\n"
PROMPT = "Choose an option[1-4] "

#: What the add command asks for, in the tutorial's order.
ADD_FIELDS = ("name", "house number", "street name", "town", "phone number")


class _EndOfInput(Exception):
    """stdin ran out: the shell quits as if told ``4``."""


class Shell:
    def __init__(self, session: Session, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> None:
        self.session = session
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr

    def ask(self, prompt: str) -> str:
        """One line of input, its terminator removed and nothing else (ABP-REQ-12)."""
        self.stdout.write(prompt)
        self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            raise _EndOfInput
        line = line.removesuffix("\n")
        return line.removesuffix("\r")

    def say(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def run(self) -> int:
        """The menu loop; the exit status is 0 (quit or end of input)."""
        try:
            while True:
                self.stdout.write(MENU)
                choice = self.ask(PROMPT).strip()
                if choice == "4":
                    return 0
                if choice == "1":
                    name, number, street, town, phone = (
                        self.ask(f"Enter the {field}: ") for field in ADD_FIELDS
                    )
                    # The tutorial's entry format (ABP-CLIENT-5): NUMBER STREET, TOWN, PHONE.
                    self.perform("add", name, f"{number} {street}, {town}, {phone}")
                elif choice in ("2", "3"):
                    name = self.ask("Enter the name: ")
                    self.perform("rem" if choice == "2" else "fnd", name)
                else:
                    # ABP-CLIENT-7: show the menu again, send nothing.
                    self.say(f"Please choose 1, 2, 3 or 4 (not {choice!r}).")
        except _EndOfInput:
            self.say("")
            return 0

    def perform(self, operation: str, name: str, entry: str = "") -> None:
        try:
            request = make_request(operation, name, entry)
        except InvalidInput as exc:
            self.say(f"Not sent: {exc}")
            return
        try:
            exchange = self.session.request(request)
        except NetworkError as exc:
            self.stderr.write(f"abp-client: {exc}\n")
            self.stderr.flush()
            return
        self.say(answer_text(request, exchange.answer))
