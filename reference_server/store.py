"""The address book on disk: SQLite in WAL mode, one writer thread, group commit.

Why a thread: every sqlite3 call blocks, and the event loop must never wait on
the disk. Why only one: SQLite has a single writer anyway, and a writer that
takes *every* pending change, applies them in one transaction and commits once
(group commit) makes N concurrent changes cost one commit, and with
``--sync full`` one fsync.

Reads do not touch the database: an in-memory mirror of the book, loaded at
open, answers them. The mirror is updated on the event loop, in queue order,
when a commit is done and before the changes' futures resolve, so whoever is
answered ``OK`` has already made the change visible to every later ``fnd``
(ABP-DUR-4), and the change is in the operating system before that
(ABP-DUR-2). A read pipelined behind changes of its own connection joins the
writer's queue (``find_after``) only to be answered at its place in order.

The file holds the store's ``PRAGMA application_id``; a SQLite file of some
other program is refused rather than written to. The file is opened in
exclusive locking mode, so a second server on the same file fails at start
instead of letting two mirrors drift apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import stat
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

#: "ABP1": marks a SQLite file as an ABP address book (``PRAGMA application_id``).
APPLICATION_ID = 0x41425031
SCHEMA_VERSION = 1

Sync = Literal["normal", "full"]
#: ``--sync``: NORMAL survives a crash of the process (the commit is in the OS
#: before ``OK``); FULL also survives power loss (fsync of every commit).
SYNC_PRAGMAS: dict[str, str] = {"normal": "NORMAL", "full": "FULL"}

_SCHEMA = """
CREATE TABLE book (
    name  TEXT PRIMARY KEY NOT NULL,  -- compared exactly: BINARY collation (ABP-REQ-7)
    entry TEXT NOT NULL
) WITHOUT ROWID
"""
_PUT = "INSERT OR REPLACE INTO book (name, entry) VALUES (?, ?)"
_REMOVE = "DELETE FROM book WHERE name = ?"

#: How long to wait for a lock held by another process before giving up.
_BUSY_TIMEOUT = 0.5


class StoreError(Exception):
    """The book cannot be opened or used; the message says why, in one line."""


class StoreClosedError(StoreError):
    """A change was submitted after ``close``."""


_PUT_OP, _REMOVE_OP, _FIND_OP = 0, 1, 2


@dataclass(slots=True)
class _Change:
    """One operation in the writer's queue. A find changes nothing: it is
    queued only to be answered at its place in the order of changes."""

    op: int
    name: str
    entry: str
    future: asyncio.Future[Any]


class _Stop:
    """Tells the writer thread to finish what it has and exit."""


_Item = _Change | _Stop


class Store:
    """The book: ``get`` from the mirror; ``put``/``remove`` through the writer.

    Open it with ``Store.open`` (blocking, before serving), then ``start()``
    inside the running event loop, and ``await close()`` at the end.
    """

    def __init__(self, connection: sqlite3.Connection, book: dict[str, str], path: str) -> None:
        self._db = connection
        self._book = book
        self.path = path
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._closing = False
        self._in_flight = 0
        self.commits = 0  # transactions committed by the writer: group commit at work

    # ------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | Path, *, sync: Sync = "normal") -> Store:
        """Open (or create) the book at ``path``; raise ``StoreError`` if unusable."""
        where = str(path)
        if sync not in SYNC_PRAGMAS:
            raise StoreError(f"unknown sync mode {sync!r}")
        _check_path(where)
        try:
            db = sqlite3.connect(
                where, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {where}: {_explain(exc)}") from None
        try:
            book = _prepare(db, where, SYNC_PRAGMAS[sync])
        except sqlite3.Error as exc:
            db.close()
            raise StoreError(f"cannot use database {where}: {_explain(exc)}") from None
        except StoreError:
            db.close()
            raise
        return cls(db, book, where)

    # -------------------------------------------------------------- reads
    def get(self, name: str) -> str | None:
        """The entry of ``name`` as of the last commit, or None."""
        return self._book.get(name)

    def __len__(self) -> int:
        return len(self._book)

    def items(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._book.items()))

    @property
    def in_flight(self) -> int:
        """Changes submitted and not yet committed (or failed)."""
        return self._in_flight

    # ------------------------------------------------------------- writes
    def start(self) -> None:
        """Start the writer thread; call from inside the running event loop."""
        if self._thread is not None:
            raise RuntimeError("store already started")
        self._loop = asyncio.get_running_loop()
        self._stopped = self._loop.create_future()
        self._thread = threading.Thread(target=self._run, name="abp-store-writer", daemon=True)
        self._thread.start()

    def put(self, name: str, entry: str) -> asyncio.Future[bool]:
        """Store ``entry`` under ``name``; the future is True once committed."""
        return self._submit(_PUT_OP, name, entry)

    def remove(self, name: str) -> asyncio.Future[bool]:
        """Remove ``name``; the future tells whether there was an entry to remove."""
        return self._submit(_REMOVE_OP, name)

    def find_after(self, name: str) -> asyncio.Future[str | None]:
        """The entry of ``name`` once every change submitted before is done.

        For a ``fnd`` pipelined behind changes: it sees exactly those, and
        none submitted after it, even when all commit in one group.
        """
        return self._submit(_FIND_OP, name)

    def _submit(self, op: int, name: str, entry: str = "") -> asyncio.Future[Any]:
        loop = self._loop
        if loop is None:
            raise RuntimeError("store not started")
        if self._closing:
            raise StoreClosedError("the store is closed")
        future: asyncio.Future[Any] = loop.create_future()
        self._in_flight += 1
        self._queue.put(_Change(op, name, entry, future))
        return future

    async def close(self) -> None:
        """Commit what is pending, stop the writer, close the file."""
        if self._closing:
            return
        self._closing = True
        if self._thread is not None and self._stopped is not None:
            self._queue.put(_Stop())
            await self._stopped
            self._thread.join()
        self._db.close()

    def close_unstarted(self) -> None:
        """Close a store whose writer never started (start-up failed)."""
        if self._thread is not None:
            raise RuntimeError("the writer is running: use close()")
        self._closing = True
        self._db.close()

    # ---------------------------------------------------- the writer thread
    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        stop = False
        try:
            while not stop:
                batch = [self._queue.get()]
                with contextlib.suppress(queue.Empty):
                    while True:
                        batch.append(self._queue.get_nowait())
                changes = [item for item in batch if isinstance(item, _Change)]
                stop = len(changes) != len(batch)
                if changes:
                    self._commit(loop, changes)
        finally:
            loop.call_soon_threadsafe(self._writer_stopped)

    def _commit(self, loop: asyncio.AbstractEventLoop, changes: list[_Change]) -> None:
        """One transaction for the whole batch: group commit."""
        results: list[bool] = []
        if all(change.op == _FIND_OP for change in changes):
            loop.call_soon_threadsafe(self._committed, changes, [False] * len(changes))
            return
        try:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for change in changes:
                    if change.op == _PUT_OP:
                        db.execute(_PUT, (change.name, change.entry))
                        results.append(True)
                    elif change.op == _REMOVE_OP:
                        results.append(db.execute(_REMOVE, (change.name,)).rowcount > 0)
                    else:
                        results.append(False)  # answered from the mirror, in order
                db.execute("COMMIT")
                self.commits += 1
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except Exception as exc:  # every failure must reach the futures
            why = _explain(exc) if isinstance(exc, sqlite3.Error) else repr(exc)
            error = StoreError(f"cannot write to {self.path}: {why}")
            loop.call_soon_threadsafe(self._failed, changes, error)
        else:
            loop.call_soon_threadsafe(self._committed, changes, results)

    # ----------------------------------------- back on the event loop
    def _committed(self, changes: Sequence[_Change], results: Sequence[bool]) -> None:
        book = self._book
        for change, result in zip(changes, results, strict=True):
            answer: object = result
            if change.op == _PUT_OP:
                book[change.name] = change.entry
            elif change.op == _REMOVE_OP:
                book.pop(change.name, None)
            else:
                answer = book.get(change.name)
            if not change.future.done():
                change.future.set_result(answer)
        self._in_flight -= len(changes)

    def _failed(self, changes: Sequence[_Change], error: StoreError) -> None:
        """The batch was rolled back: its changes fail; its finds see the book
        as it stayed."""
        for change in changes:
            if change.future.done():
                continue
            if change.op == _FIND_OP:
                change.future.set_result(self._book.get(change.name))
            else:
                change.future.set_exception(error)
        self._in_flight -= len(changes)

    def _writer_stopped(self) -> None:
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)


def _prepare(db: sqlite3.Connection, where: str, synchronous: str) -> dict[str, str]:
    """Lock, check and (for a new file) initialise the book; return its contents."""
    db.execute("PRAGMA locking_mode = EXCLUSIVE")
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if application_id != APPLICATION_ID and (application_id != 0 or tables != 0):
        raise StoreError(
            f"{where} is a SQLite database of another program, not an ABP address book"
        )
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"cannot use database {where}: WAL mode refused (journal mode {mode})")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    # A write now, not at the first add: a read-only or locked file fails at start.
    db.execute("BEGIN IMMEDIATE")
    try:
        if application_id == 0:
            db.execute(_SCHEMA)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        raise StoreError(f"{where} has book schema version {version}; this server reads 1")
    check = db.execute("PRAGMA quick_check").fetchall()
    if check != [("ok",)]:
        problems = [
            line.strip()
            for row in check
            for line in str(row[0]).splitlines()
            if line.strip() and not line.startswith("*** in database")
        ] or ["PRAGMA quick_check failed"]
        more = f" (and {len(problems) - 1} more: see PRAGMA quick_check)" if problems[1:] else ""
        raise StoreError(f"database {where} is corrupt: {problems[0]}{more}")
    return dict(db.execute("SELECT name, entry FROM book"))


def _check_path(where: str) -> None:
    """Refuse, before SQLite touches anything, a path that is there and is not a
    regular file (a directory, ``/dev/null``, a FIFO): SQLite would create
    ``PATH-journal`` beside it, or block on it."""
    try:
        mode = os.stat(where).st_mode
    except FileNotFoundError:
        return  # created as a new book
    except OSError as exc:
        raise StoreError(f"cannot open database {where}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise StoreError(f"cannot open database {where}: it is {kind}")


def _explain(exc: sqlite3.Error) -> str:
    text = " ".join(str(exc).split())
    if "locked" in text:
        return f"{text} (is another abp-server using it?)"
    if "unable to open" in text:
        return f"{text} (does its directory exist, and may we write there?)"
    if "malformed" in text:
        return f"the file is corrupt ({text})"
    return text


__all__ = ["APPLICATION_ID", "SYNC_PRAGMAS", "Store", "StoreClosedError", "StoreError", "Sync"]
