"""The interactive shell: ``abp-client`` with no command, in the manner of redis-cli.

A prompt naming the server; commands typed as ``add alice 12 High St``,
``fnd alice``, ``rem alice``, ``raw fnd:x``, ``help``, ``quit``. One
connection is kept open and a new one opened when the server has closed it.
On a terminal: readline line editing, history kept across sessions in
``$XDG_STATE_HOME/abp-client/history`` (else ``~/.local/state/...``), tab
completion of commands and of names seen in this session, answers coloured
by status unless ``NO_COLOR`` is set or ``TERM`` is ``dumb``; Ctrl-C cancels
the line (or the request in flight), Ctrl-D leaves with a newline. From a pipe
the same commands are read one per line, with no prompt and no colour.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from protocol.escape import EscapeError, escape, unescape
from reference_client.link import BY_CLOSE, NetworkError, Session
from reference_client.operations import (
    InvalidInput,
    answer_text,
    exchange_record,
    failure_record,
    is_error,
    make_request,
)

COMMANDS = ("add", "fnd", "rem", "raw", "help", "quit")

HELP = """\
  add NAME [ENTRY]   store ENTRY (the rest of the line, spaces kept) under NAME
  fnd NAME           show the entry of NAME
  rem NAME           remove the entry of NAME
  raw TEXT           send TEXT exactly on a new connection (escapes \\n \\r \\t \\0 \\\\ \\xHH,
                     no terminator added) and show what comes back
  help               this text
  quit               leave (Ctrl-D too; Ctrl-C cancels the line)
A NAME with spaces is written in double quotes: add "Mary Ann" 1 Road."""

#: ANSI colours by what an answer says.
GREEN, RED, YELLOW, RESET = "\033[32m", "\033[31m", "\033[33m", "\033[0m"
#: Lines kept in the history file.
HISTORY_LENGTH = 1000


def history_path(environ: Mapping[str, str]) -> Path:
    """``$XDG_STATE_HOME/abp-client/history``, else ``~/.local/state/abp-client/history``."""
    state = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "abp-client" / "history"


def colour_wanted(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Colour only on a terminal that has it, and never when NO_COLOR is set."""
    if environ.get("NO_COLOR"):
        return False
    if environ.get("TERM", "dumb") == "dumb":
        return False
    return stream.isatty()


class UsageError(ValueError):
    """A line that is not a shell command; it is shown and nothing is sent."""


def parse_line(line: str) -> tuple[str, str, str]:
    """``(command, name, entry)`` from one line; ``raw`` keeps its text in ``name``."""
    command, _, rest = line.strip().partition(" ")
    if command not in COMMANDS:
        raise UsageError(f"unknown command {command!r}: type help")
    if command in ("help", "quit"):
        return command, "", ""
    if command == "raw":
        if not rest:
            raise UsageError("raw needs TEXT to send")
        return command, rest, ""
    rest = rest.lstrip(" ")
    if rest.startswith('"'):
        name, quote, after = rest[1:].partition('"')
        if not quote:
            raise UsageError('a name that starts with " ends with "')
        if after and not after.startswith(" "):
            raise UsageError('put a space after the closing "')
        entry = after[1:]
    elif command == "add":
        name, _, entry = rest.partition(" ")
    else:
        name, entry = rest, ""
    if command != "add" and entry:
        raise UsageError(f"{command} takes only a NAME")
    if not name:
        raise UsageError(f"{command} needs a NAME")
    return command, name, entry


class Console:
    """The read-eval-print loop around one kept-open ``Session``."""

    def __init__(
        self,
        session: Session,
        *,
        wait: float = 1.0,
        json_output: bool = False,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.session = session
        self.wait = wait
        self.json_output = json_output
        self.stdin = stdin if stdin is not None else sys.stdin
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self.environ = environ if environ is not None else os.environ
        self.interactive = self.stdin.isatty() and self.stdout.isatty()
        self.colour = self.interactive and colour_wanted(self.stdout, self.environ)
        self.names: set[str] = set()  # seen this session, for tab completion
        self.prompt = f"{session.address}{' (tls)' if session.tls else ''}> "

    # ------------------------------------------------------------ output
    def show(self, text: str, colour: str = "") -> None:
        if self.colour and colour:
            text = f"{colour}{text}{RESET}"
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def warn(self, text: str) -> None:
        if self.colour:
            text = f"{YELLOW}{text}{RESET}"
        self.stderr.write(f"abp-client: {text}\n")
        self.stderr.flush()

    # ------------------------------------------------------------ the loop
    def run(self) -> int:
        """Read and run commands until ``quit`` or end of input; exit status 0."""
        history = self._start_readline() if self.interactive else None
        if self.interactive:
            self.show(f"abp-client shell for {self.session.address}: type help; Ctrl-D leaves")
        try:
            while True:
                try:
                    line = self._read()
                except KeyboardInterrupt:  # Ctrl-C: drop the line, prompt again
                    self.stdout.write("\n")
                    continue
                except EOFError:  # Ctrl-D, or the end of the piped commands
                    if self.interactive:
                        self.stdout.write("\n")
                        self.stdout.flush()
                    return 0
                if not line.strip():
                    continue
                try:
                    if not self.execute(line):
                        return 0
                except KeyboardInterrupt:
                    self.stdout.write("\n")
                    self.warn("cancelled; the connection is closed")
        finally:
            self.session.close()
            if history is not None:
                self._save_history(history)

    def _read(self) -> str:
        if self.interactive:
            return input(self.prompt)
        line = self.stdin.readline()
        if not line:
            raise EOFError
        return line.removesuffix("\n").removesuffix("\r")

    def execute(self, line: str) -> bool:
        """Run one command line; False once it says quit."""
        try:
            command, name, entry = parse_line(line)
        except UsageError as exc:
            self.warn(str(exc))
            return True
        if command == "quit":
            return False
        if command == "help":
            self.show(HELP)
        elif command == "raw":
            self.raw(name)
        else:
            self.request(command, name, entry)
        return True

    def request(self, command: str, name: str, entry: str) -> None:
        try:
            request = make_request(command, name, entry)
        except InvalidInput as exc:
            self.warn(f"not sent: {exc}")
            return
        self.names.add(name)
        try:
            exchange = self.session.request(request)
        except NetworkError as exc:
            self._notices()
            if self.json_output:
                self.show(json.dumps(failure_record(request, str(exc)), ensure_ascii=False))
            self.warn(str(exc))
            return
        self._notices()
        if exchange.ending == BY_CLOSE and not self.session.legacy:
            self.warn("answer ended by the connection closing, without LF")
        if self.json_output:
            self.show(json.dumps(exchange_record(exchange), ensure_ascii=False))
            return
        error = is_error(exchange.answer)
        self.show(answer_text(request, exchange.answer), RED if error else GREEN)

    def _notices(self) -> None:
        for notice in self.session.notices:
            self.warn(notice)
        self.session.notices.clear()

    def raw(self, text: str) -> None:
        try:
            data = unescape(text)
        except EscapeError as exc:
            self.warn(f"bad escape: {exc}")
            return
        try:
            result = self.session.raw(data, wait=self.wait)
        except NetworkError as exc:
            self.warn(str(exc))
            return
        self.show(escape(result.received))
        why = f": {result.error}" if result.error else ""
        self.warn(f"{len(result.received)} bytes received; {result.ending}{why}")

    # ------------------------------------------------------------ readline
    def _start_readline(self) -> Path | None:
        """Line editing, completion and history; None when readline is missing."""
        try:
            import readline
        except ImportError:  # not on this platform: plain input() still works
            return None
        if "libedit" in (readline.__doc__ or ""):
            readline.parse_and_bind("bind ^I rl_complete")
        else:
            readline.parse_and_bind("tab: complete")
        readline.set_completer_delims(" ")
        readline.set_completer(self.complete)
        readline.set_history_length(HISTORY_LENGTH)
        path = history_path(self.environ)
        with contextlib.suppress(OSError):
            readline.read_history_file(path)
        return path

    def _save_history(self, path: Path) -> None:
        import readline

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)
        except OSError as exc:
            self.warn(f"history not saved to {path}: {exc.strerror or exc}")

    def complete(self, text: str, state: int) -> str | None:
        """readline's completer: commands first on the line, then names seen."""
        import readline

        before = readline.get_line_buffer()[: readline.get_begidx()]
        if not before.strip():
            choices = [f"{c} " for c in COMMANDS if c.startswith(text)]
        elif before.split()[0] in ("add", "fnd", "rem") and len(before.split()) == 1:
            choices = sorted(f"{n} " for n in self.names if n.startswith(text) and " " not in n)
        else:
            choices = []
        return choices[state] if state < len(choices) else None
