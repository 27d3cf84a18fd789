"""Section 6 of docs/spec.md: Durability and consistency.

Restart and SIGKILL need a server the suite may stop: ``--server-cmd`` starts
a private instance per test (its own port, its own ``{tmpdir}``); without it
those tests skip with the reason. Concurrent writers and read-your-writes
across connections run against the shared server too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from conformance.harness.process import ServerProcess, ServerStartError
from conformance.judging.session import ANY_OK, Expected, ServerSession
from conformance.judging.verdict import fail
from protocol import Add, Find, Ok, Remove
from protocol.codec import encode_request, encode_response, line_content, no_entry

WRITERS = 20


@contextmanager
def private(abp: ServerSession, why: str) -> Iterator[ServerProcess]:
    with abp.private_server() as server:
        if server is None:
            pytest.skip(f"needs --server-cmd (pytest: --abp-server-cmd): {why}")
        yield server


def bring_back(abp: ServerSession, server: ServerProcess, requirement: str, how: str) -> None:
    """Stop the private server (``how``: "restart" is SIGTERM, "kill" SIGKILL)
    and start it again; a server that does not come back fails ``requirement``."""
    abp.transcript.note("--", f"{how} of the private server, then start it again")
    if how == "kill":
        server.kill()
    else:
        server.stop()
    try:
        server.start()
    except ServerStartError as exc:
        fail(
            requirement,
            f"the server did not start again after a {how}: {exc}",
        )


def expect_all(
    abp: ServerSession,
    requirement: str,
    checks: list[tuple[Find, Expected]],
    summary: str,
    address: tuple[str, int] | None = None,
) -> None:
    """Lookups, pipelined on one connection (one connection each in legacy
    framing), each with its expected answer."""
    if abp.target.legacy:
        for request, want in checks:
            abp.expect(requirement, request, want, summary, address=address, by="meaning")
        return
    conn = abp.raw(requirement, address=address)
    conn.send(b"".join(encode_request(request) for request, _ in checks))
    abp.expect_lines(requirement, conn, [want for _, want in checks], summary)
    conn.close()


@pytest.mark.requirement("ABP-DUR-1")
def test_every_ok_change_survives_a_restart(abp: ServerSession) -> None:
    """ABP-DUR-1: "Every change that was answered `OK` MUST survive a restart of
    the server." Adds, a replacement and a removal, then SIGTERM and start."""
    with private(abp, "restarting the server") as server:
        at = server.address
        kept, replaced, removed = abp.name("kept"), abp.name("replaced"), abp.name("removed")
        for request in (
            Add(kept, "kept: 1, 2"),
            Add(replaced, "old"),
            Add(removed, "doomed"),
            Add(replaced, "new \U0001f600"),
            Remove(removed),
        ):
            abp.expect(
                "ABP-DUR-1",
                request,
                ANY_OK,
                "a change before the restart",
                address=at,
                by="meaning",
            )
        bring_back(abp, server, "ABP-DUR-1", "restart")
        expect_all(
            abp,
            "ABP-DUR-1",
            [
                (Find(kept), Ok("kept: 1, 2")),
                (Find(replaced), Ok("new \U0001f600")),
                (Find(removed), no_entry(removed)),
            ],
            "after a restart",
            address=at,
        )


@pytest.mark.requirement("ABP-DUR-2")
def test_change_survives_sigkill_right_after_its_ok(abp: ServerSession) -> None:
    """ABP-DUR-2: "Every change that was answered `OK` MUST survive a SIGKILL of
    the server process: it is written before the answer is sent." The kill
    follows the last `OK` at once."""
    with private(abp, "killing the server with SIGKILL") as server:
        at = server.address
        gone = abp.name("gone")
        abp.expect("ABP-DUR-2", Add(gone, "to be removed"), ANY_OK, "add", address=at, by="meaning")
        names = [abp.name("killed") for _ in range(10)]
        changes = [Add(n, f"entry {i}") for i, n in enumerate(names)] + [Remove(gone)]
        if abp.target.legacy:
            for change in changes:
                abp.expect("ABP-DUR-2", change, ANY_OK, "a change", address=at, by="meaning")
        else:
            conn = abp.raw("ABP-DUR-2", address=at)
            conn.send(b"".join(encode_request(change) for change in changes))
            abp.expect_lines("ABP-DUR-2", conn, [ANY_OK] * len(changes), "pipelined changes")
        bring_back(abp, server, "ABP-DUR-2", "kill")
        expect_all(
            abp,
            "ABP-DUR-2",
            [(Find(n), Ok(f"entry {i}")) for i, n in enumerate(names)]
            + [(Find(gone), no_entry(gone))],
            "after SIGKILL",
            address=at,
        )


def concurrent_writers(
    abp: ServerSession, address: tuple[str, int] | None = None
) -> dict[str, str]:
    """WRITERS connections, opened together, each sending its adds in one
    write (one add each in legacy framing); returns what was OK'd."""
    per_writer = 1 if abp.target.legacy else 5
    crowd = abp.crowd("w", address=address)
    writers = crowd.open(WRITERS, abp.target.holdup_bound)
    if len(writers) < WRITERS:
        fail(
            "ABP-DUR-3",
            f"only {len(writers)} of {WRITERS} writers could connect"
            f" within {abp.target.holdup_bound:g}s",
        )
    book: dict[str, str] = {}
    for writer in writers:
        batch = [(abp.name("w"), f"writer {writer.index}, #{j}") for j in range(per_writer)]
        crowd.send(writer, b"".join(abp.target.frame(Add(n, e)) for n, e in batch))
        book.update(batch)
    crowd.exchange(per_writer, abp.target.timeout)
    for writer in writers:
        lines = writer.lines() if not abp.target.legacy else [bytes(writer.received)]
        if len(lines) < per_writer or any(
            not line_content(line).startswith(b"OK") for line in lines
        ):
            fail(
                "ABP-DUR-3",
                f"writer {writer.name} did not get {per_writer} OK answers",
                expected=encode_response(Ok(None)) * per_writer,
                actual=bytes(writer.received),
            )
    return book


@pytest.mark.requirement("ABP-DUR-3")
def test_concurrent_writers_of_distinct_names_are_all_kept(abp: ServerSession) -> None:
    """ABP-DUR-3: "Concurrent changes of distinct names, from many connections,
    MUST all be kept." Twenty writers at once, then every name looked up."""
    book = concurrent_writers(abp)
    expect_all(
        abp,
        "ABP-DUR-3",
        [(Find(name), Ok(entry)) for name, entry in book.items()],
        "every concurrent writer's entry",
    )


@pytest.mark.requirement("ABP-DUR-3", "ABP-DUR-2")
def test_concurrent_writers_survive_sigkill(abp: ServerSession) -> None:
    """ABP-DUR-3: "Concurrent changes of distinct names, from many connections,
    MUST all be kept", across a SIGKILL (ABP-DUR-2)."""
    with private(abp, "killing the server with SIGKILL") as server:
        book = concurrent_writers(abp, server.address)
        bring_back(abp, server, "ABP-DUR-3", "kill")
        expect_all(
            abp,
            "ABP-DUR-3",
            [(Find(name), Ok(entry)) for name, entry in book.items()],
            "every concurrent writer's entry, after SIGKILL",
            address=server.address,
        )


@pytest.mark.requirement("ABP-DUR-4")
def test_fnd_on_another_connection_sees_an_ok_change(abp: ServerSession) -> None:
    """ABP-DUR-4: "A `fnd` sent after the `OK` of an `add` or `rem`, on any
    connection, MUST see that change." Writer and reader swap connections
    every round."""
    name = abp.name()
    if abp.target.legacy:  # a legacy server may serve one connection at a time: new ones
        first = second = None
    else:
        first, second = abp.raw("ABP-DUR-4"), abp.raw("ABP-DUR-4")
    rounds = 3 if abp.target.legacy else 10
    for i in range(rounds):
        writer, reader = (first, second) if i % 2 == 0 else (second, first)
        abp.expect("ABP-DUR-4", Add(name, f"round {i}"), ANY_OK, "add", conn=writer, by="meaning")
        abp.expect(
            "ABP-DUR-4",
            Find(name),
            Ok(f"round {i}"),
            "the other connection",
            conn=reader,
            by="meaning",
        )
        abp.expect("ABP-DUR-4", Remove(name), ANY_OK, "rem", conn=reader, by="meaning")
        abp.expect(
            "ABP-DUR-4",
            Find(name),
            no_entry(name),
            "the removing connection's peer",
            conn=writer,
            by="meaning",
        )


@pytest.mark.requirement("ABP-DUR-4")
def test_fnd_on_a_new_connection_sees_an_ok_change(abp: ServerSession) -> None:
    """ABP-DUR-4: "A `fnd` sent after the `OK` of an `add` or `rem`, on any
    connection, MUST see that change": each lookup on a connection opened
    after the `OK`."""
    name = abp.name()
    for i in range(3):
        abp.expect("ABP-DUR-4", Add(name, f"v{i}"), ANY_OK, "add", by="meaning")
        abp.expect(
            "ABP-DUR-4", Find(name), Ok(f"v{i}"), "a new connection after the add", by="meaning"
        )
    abp.expect("ABP-DUR-4", Remove(name), ANY_OK, "rem", by="meaning")
    abp.expect(
        "ABP-DUR-4", Find(name), no_entry(name), "a new connection after the rem", by="meaning"
    )
