"""``reference_server.store``: the SQLite book, its writer thread and group
commit, on real files. Each test runs its own event loop (``asyncio.run``)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from reference_server.store import APPLICATION_ID, Store, StoreError

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, 20))


def read_back(path: Path) -> dict[str, str]:
    """The book as a separate SQLite connection sees it on disk."""
    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT name, entry FROM book"))
    finally:
        db.close()


def test_a_new_file_is_a_wal_book_with_our_application_id(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    store = Store.open(path)
    assert len(store) == 0
    store.close_unstarted()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_put_remove_and_the_mirror(tmp_path: Path) -> None:
    path = tmp_path / "book.sqlite3"

    async def scenario() -> None:
        store = Store.open(path)
        store.start()
        assert await store.put("alice", "1 High St") is True
        assert store.get("alice") == "1 High St"
        assert await store.put("alice", "2 Low Rd") is True  # replaces
        assert await store.remove("bob") is False  # nothing to remove
        assert await store.put("bob", "") is True
        assert await store.remove("bob") is True
        assert store.get("bob") is None
        assert dict(store.items()) == {"alice": "2 Low Rd"}
        await store.close()

    run(scenario())
    assert read_back(path) == {"alice": "2 Low Rd"}


def test_text_is_stored_exactly(tmp_path: Path) -> None:
    """ABP-REQ-7, ABP-RESP-2: no folding, no trimming, no normalisation."""
    path = tmp_path / "book.sqlite3"
    pairs = {
        "Bob": "upper",
        "bob": "lower",
        "\u00e9": "nfc",
        "e\u0301": "nfd",
        " pad ": "\t tabs and spaces \t",
        "名前🚀": "東京, 1:2, ✓",
        "x:y": "a,b:c",
    }

    async def scenario() -> None:
        store = Store.open(path)
        store.start()
        await asyncio.gather(*(store.put(name, entry) for name, entry in pairs.items()))
        await store.close()

    run(scenario())
    assert read_back(path) == pairs
    reopened = Store.open(path)
    assert dict(reopened.items()) == pairs
    reopened.close_unstarted()


def test_group_commit_batches_concurrent_changes(tmp_path: Path) -> None:
    path = tmp_path / "book.sqlite3"

    async def scenario() -> int:
        store = Store.open(path, sync="full")
        store.start()
        results = await asyncio.gather(*(store.put(f"n{i}", str(i)) for i in range(2000)))
        assert all(results)
        assert store.in_flight == 0
        commits = store.commits
        await store.close()
        return commits

    commits = run(scenario())
    assert 1 <= commits < 200  # far fewer commits than changes
    assert len(read_back(path)) == 2000


def test_changes_commit_in_submission_order(tmp_path: Path) -> None:
    """The last of several changes to one name wins, and each rem's result
    reflects the changes before it."""
    path = tmp_path / "book.sqlite3"

    async def scenario() -> list[bool]:
        store = Store.open(path)
        store.start()
        futures = [
            store.put("k", "1"),
            store.remove("k"),
            store.remove("k"),
            store.put("k", "2"),
            store.put("k", "3"),
        ]
        results = list(await asyncio.gather(*futures))
        assert store.get("k") == "3"
        await store.close()
        return results

    assert run(scenario()) == [True, True, False, True, True]
    assert read_back(path) == {"k": "3"}


def test_find_after_sees_exactly_the_changes_queued_before_it(tmp_path: Path) -> None:
    async def scenario() -> list[object]:
        store = Store.open(tmp_path / "book.sqlite3")
        store.start()
        futures: list[asyncio.Future[Any]] = [
            store.find_after("k"),
            store.put("k", "1"),
            store.find_after("k"),
            store.remove("k"),
            store.find_after("k"),
            store.put("k", "2"),
        ]
        results = list(await asyncio.gather(*futures))
        assert await store.find_after("k") == "2"
        await store.close()
        return results

    assert run(scenario()) == [None, True, "1", True, None, True]


def test_the_loop_is_not_blocked_while_the_writer_works(tmp_path: Path) -> None:
    """The event loop keeps turning while thousands of changes are written."""
    path = tmp_path / "book.sqlite3"

    async def scenario() -> int:
        store = Store.open(path, sync="full")
        store.start()
        ticks = 0
        pending = asyncio.gather(*(store.put(f"n{i}", "x" * 100) for i in range(5000)))
        while not pending.done():
            ticks += 1
            await asyncio.sleep(0)
        await pending
        await store.close()
        writers = [t for t in threading.enumerate() if t.name == "abp-store-writer"]
        assert writers == []  # the writer thread is gone
        return ticks

    assert run(scenario()) > 1


def test_sync_modes_set_the_pragma(tmp_path: Path) -> None:
    for sync, expected in (("normal", 1), ("full", 2)):
        store = Store.open(tmp_path / f"{sync}.sqlite3", sync=sync)  # type: ignore[arg-type]
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == expected
        store.close_unstarted()
    with pytest.raises(StoreError, match="sync mode"):
        Store.open(tmp_path / "x.sqlite3", sync="sometimes")  # type: ignore[arg-type]


def test_a_second_store_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "book.sqlite3"
    first = Store.open(path)
    try:
        with pytest.raises(StoreError, match="locked"):
            Store.open(path)
    finally:
        first.close_unstarted()
    Store.open(path).close_unstarted()  # free again once the first is closed


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello, I am a text file\n" * 50, "not a database"),
        (b"SQLite format 3\x00" + b"\x00" * 2, "cannot"),
    ],
)
def test_files_that_are_not_books_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "book.sqlite3"
    path.write_bytes(content)
    with pytest.raises(StoreError, match=message):
        Store.open(path)
    assert path.read_bytes() == content  # and left as they were


def test_a_foreign_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE book (name, entry, extra)")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="another program"):
        Store.open(path)
    assert path.read_bytes() == before


def test_corrupt_pages_are_detected_at_open(tmp_path: Path) -> None:
    path = tmp_path / "book.sqlite3"

    async def fill() -> None:
        store = Store.open(path)
        store.start()
        await asyncio.gather(*(store.put(f"n{i:04}", "e" * 300) for i in range(300)))
        await store.close()

    run(fill())
    with path.open("r+b") as file:
        file.seek(4096 * 3)
        file.write(b"\xba\xad" * 4096)
    with pytest.raises(StoreError, match="corrupt") as refused:
        Store.open(path)
    assert "\n" not in str(refused.value)  # one line, whatever quick_check lists


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory"):
        Store.open(tmp_path)


def test_a_path_that_is_not_a_regular_file_is_refused_before_sqlite(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/null")):
        with pytest.raises(StoreError, match="it is not a regular file"):
            Store.open(path)
    assert [p.name for p in tmp_path.iterdir()] == ["fifo"]  # no -journal, no -wal


def test_write_failure_reaches_the_futures(tmp_path: Path) -> None:
    """A change that cannot be written fails its future; nothing hangs."""
    path = tmp_path / "book.sqlite3"

    async def scenario() -> None:
        store = Store.open(path)
        # Make the table refuse inserts, as a full disk or a broken file would.
        store._db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON book BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
        store.start()
        with pytest.raises(StoreError, match="cannot write"):
            await store.put("a", "b")
        assert store.get("a") is None
        assert await store.remove("a") is False  # the writer goes on
        await store.close()

    run(scenario())


def test_submitting_after_close_is_an_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = Store.open(tmp_path / "book.sqlite3")
        store.start()
        await store.close()
        with pytest.raises(StoreError):
            store.put("a", "b")

    run(scenario())
