"""The shared server among a run's xdist workers: who may use it at once.

Most tests use a few connections and run side by side on the shared server.
A test that fills its connection slots (the crowd of ABP-CONN-4, the limit
of ABP-CONN-8) would make a test running beside it meet `ERROR: Server
busy`, a refusal the spec allows (ABP-CONN-8), and fail it for the suite's
own crowding. So such a test is marked ``exclusive``: it waits until the
tests running in other workers end, and new ones wait until it ends.

A readers-writer lock over two files of the run's base directory, with
``flock``. Every other server test is a reader: it passes the gate (taken
and released at once), then holds the data lock shared. An exclusive test
is a writer: it holds the gate while it waits for the data lock, so that new
readers queue behind it and a stream of readers never starves it.

    reader: gate EX, data SH, gate UN ... data UN
    writer: gate EX, data EX, gate UN ... data UN

With one worker, or where there is no ``flock`` (Windows), there is nothing
to share and no lock.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from conformance.harness.timing import POLL

try:
    import fcntl
except ImportError:  # not POSIX: no lock (one worker is then the safe choice)
    fcntl = None  # type: ignore[assignment]

#: The marker of a test that needs the shared server to itself.
EXCLUSIVE = "exclusive"


class SharingTimeout(Exception):
    """Another worker's test held the shared server past the deadline."""


def _lock(fd: int, how: int, deadline: float, what: str) -> None:
    """``flock(fd, how)``, waiting at most until ``deadline``."""
    assert fcntl is not None
    while True:
        try:
            fcntl.flock(fd, how | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise SharingTimeout(f"waited too long for {what}") from None
            time.sleep(POLL)  # a wait on another process's lock: there is no event to wait on
        else:
            return


@contextlib.contextmanager
def use_shared_server(directory: Path | None, *, exclusive: bool, wait: float) -> Iterator[None]:
    """Hold the shared server (alone when ``exclusive``) for the block;
    ``directory`` is the run's, common to its workers (None: one worker)."""
    if directory is None or fcntl is None:
        yield
        return
    deadline = time.monotonic() + wait
    with (
        (directory / "abp-shared-server.gate").open("a") as gate,
        (directory / "abp-shared-server.data").open("a") as data,
    ):
        _lock(gate.fileno(), fcntl.LOCK_EX, deadline, "the turn to use the shared server")
        try:
            how = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            _lock(data.fileno(), how, deadline, "the other workers' tests to end")
        finally:
            fcntl.flock(gate.fileno(), fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(data.fileno(), fcntl.LOCK_UN)


__all__ = ["EXCLUSIVE", "SharingTimeout", "use_shared_server"]
