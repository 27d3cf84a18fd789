"""The shared server among xdist workers (conformance/harness/sharing.py).

Each holder of the lock is a real process (xdist workers are processes):
it takes the lock, says so on stdout, and lets go when told on stdin.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.harness.sharing import SharingTimeout, use_shared_server

HOLDER = """
import sys
from pathlib import Path
from conformance.harness.sharing import use_shared_server
with use_shared_server(Path(sys.argv[1]), exclusive=sys.argv[2] == "x", wait=30):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")


class Holder:
    def __init__(self, directory: Path, exclusive: bool) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(directory), "x" if exclusive else "s"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def said(self, word: str) -> bool:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip() == word

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=5)


@pytest.fixture
def holders(tmp_path: Path) -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        holder.stop()


def hold(holders: list[Holder], directory: Path, *, exclusive: bool) -> Holder:
    holder = Holder(directory, exclusive)
    holders.append(holder)
    return holder


def test_an_exclusive_test_keeps_others_out_until_it_ends(
    tmp_path: Path, holders: list[Holder]
) -> None:
    writer = hold(holders, tmp_path, exclusive=True)
    assert writer.said("held")
    with pytest.raises(SharingTimeout), use_shared_server(tmp_path, exclusive=False, wait=0.2):
        pass
    writer.release()
    assert writer.said("released")
    with use_shared_server(tmp_path, exclusive=False, wait=5):
        pass  # got in


def test_tests_that_share_run_side_by_side(tmp_path: Path, holders: list[Holder]) -> None:
    reader = hold(holders, tmp_path, exclusive=False)
    assert reader.said("held")
    started = time.monotonic()
    with use_shared_server(tmp_path, exclusive=False, wait=5):
        assert time.monotonic() - started < 1  # got in beside the other reader
    with pytest.raises(SharingTimeout), use_shared_server(tmp_path, exclusive=True, wait=0.2):
        pass  # an exclusive test waits for the reader to end


def test_a_waiting_exclusive_test_is_not_starved_by_new_sharers(
    tmp_path: Path, holders: list[Holder]
) -> None:
    """A reader holds the server; a writer waits for it; a new reader must
    queue behind the writer, not slip in beside the first reader."""
    first = hold(holders, tmp_path, exclusive=False)
    assert first.said("held")
    writer = hold(holders, tmp_path, exclusive=True)
    deadline = time.monotonic() + 10
    gate_taken = False
    while not gate_taken and time.monotonic() < deadline:
        try:  # the writer holds the gate once it waits: a reader times out on it
            with use_shared_server(tmp_path, exclusive=False, wait=0.05):
                pass
        except SharingTimeout:
            gate_taken = True
    assert gate_taken, "the waiting writer never blocked new readers"
    first.release()
    assert first.said("released")
    assert writer.said("held")
    writer.release()
    assert writer.said("released")


def test_one_worker_takes_no_lock(tmp_path: Path, holders: list[Holder]) -> None:
    writer = hold(holders, tmp_path, exclusive=True)
    assert writer.said("held")
    with use_shared_server(None, exclusive=True, wait=0.1):
        pass  # no directory: one worker, nothing to share
