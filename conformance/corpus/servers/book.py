"""The corpus servers' address book: a dict mirrored by an append-only log.

Every change is one JSON line appended with ``os.write`` before the server
answers, so it survives a SIGKILL (the page cache outlives the process); a
torn last line, from a crash in the middle of a write, is ignored on replay.
Deliberately not the reference server's store: the corpus must stay
independent of the implementation the suite is validated against.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

LOG_NAME = "book.jsonl"


def _line(record: dict[str, object]) -> bytes:
    return json.dumps(record).encode("ascii") + b"\n"


class Book:
    """Durable: a change is on its way to disk before the call returns."""

    def __init__(self, data_dir: Path | None) -> None:
        self.entries: dict[str, str] = {}
        self._fd: int | None = None
        self._path: Path | None = None
        if data_dir is None:
            return
        data_dir.mkdir(parents=True, exist_ok=True)
        path = self._path = data_dir / LOG_NAME
        if path.exists():
            self._replay(path.read_bytes())
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _replay(self, log: bytes) -> None:
        for raw in log.split(b"\n")[:-1]:  # the part after the last LF is torn
            record = json.loads(raw)
            if "add" in record:
                name, entry = record["add"]
                self.entries[name] = entry
            else:
                self.entries.pop(record["rem"], None)

    def _log(self, record: dict[str, object]) -> None:
        if self._fd is None:
            return
        data = _line(record)
        while data:
            data = data[os.write(self._fd, data) :]

    def get(self, name: str) -> str | None:
        return self.entries.get(name)

    def put(self, name: str, entry: str) -> None:
        self._log({"add": [name, entry]})
        self.entries[name] = entry

    def delete(self, name: str) -> bool:
        if name not in self.entries:
            return False
        self._log({"rem": name})
        del self.entries[name]
        return True

    def replace(self, entries: dict[str, str]) -> None:
        """The whole book at once, saved as a fresh log (renamed into place)."""
        self.entries = dict(entries)
        if self._path is None:
            return
        tmp = self._path.with_suffix(".tmp")
        tmp.write_bytes(b"".join(_line({"add": [n, e]}) for n, e in entries.items()))
        os.replace(tmp, self._path)
        self.close()
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class MemoryBook(Book):
    """Nothing written anywhere (a defect: see ``forgets-on-restart``)."""

    def __init__(self, data_dir: Path | None) -> None:
        super().__init__(None)


class BufferedBook(Book):
    """Changes kept in a buffer and written only at a clean exit (a defect:
    ``flush-on-exit``): a restart keeps them, a SIGKILL loses them."""

    def __init__(self, data_dir: Path | None) -> None:
        super().__init__(data_dir)
        self._pending: list[dict[str, object]] = []

    def _log(self, record: dict[str, object]) -> None:
        self._pending.append(record)

    def close(self) -> None:
        pending, self._pending = self._pending, []
        for record in pending:
            super()._log(record)
        super().close()
