"""Every wait the suite makes, in one place, each with its reason (seconds).

Two kinds. *Loopback facts* do not depend on how fast the server under test
is and never scale: how long loopback takes to deliver one ``send()``, or how
long a pause splits a request in two (ABP-FRAME-6). *Budgets* are what the
suite grants the implementation under test before it judges, and they scale
with ``--timeout``: the wait actually used is ``budget(VALUE, timeout)`` =
``min(VALUE * max(1, timeout / TIMEOUT), timeout)``. At the default
``--timeout`` (``TIMEOUT``) a budget is its VALUE here; ``--timeout 10``
doubles every one (a slow machine, a loaded CI runner); a ``--timeout``
shorter than a VALUE caps it. ``--timeout`` itself bounds every single wait
for an answer.
"""

from __future__ import annotations

# -- the bound on every wait
#: Default ``--timeout``: the longest any single wait for an answer may take.
TIMEOUT = 5.0

# -- processes (the suite's own, not the server's speed: never scaled)
#: How long a started server may take to accept connections (an interpreter
#: importing its modules on a busy machine).
PROCESS_READY = 10.0
#: How long a process may take to exit after SIGTERM (or SIGKILL) before the
#: next step; also the bound on joining the suite's own threads.
PROCESS_EXIT = 5.0
#: How long a stopped server's port may still accept connections once its
#: process group is killed (the kernel closes a dead process's sockets at
#: once: margin for a busy machine). Accepting past it, the server daemonised.
PORT_RELEASE = 2.0
#: One connect attempt while waiting for a process to listen.
CONNECT_ATTEMPT = 0.2
#: How often a wait on a condition looks again.
POLL = 0.01

# -- loopback facts (never scaled)
#: A legacy answer (no LF) is over after this much silence: one answer is one
#: ``send()``, whose bytes arrive together on loopback; the protocol's own
#: default quiet period (ABP-FRAME-6).
LEGACY_QUIET = 0.1
#: The longest pause between the pieces of a split request that still makes
#: them one request: half the protocol's default quiet period (ABP-FRAME-6);
#: less for a server whose quiet period is shorter (``--quiet-period``).
TRICKLE_MARGIN = 0.05
#: The glance after each piece of a split request for an early answer: short,
#: so that the pieces stay well within ``TRICKLE_MARGIN`` of each other.
TRICKLE_LISTEN = 0.002
#: A short listen for bytes already in flight (a check that nothing more was
#: sent, or a moment for queued bytes to leave): loopback delivers in well
#: under a millisecond, so this is margin for a busy machine.
SETTLE = 0.05
#: How long one ``send()`` of a flood may block before the peer counts as no
#: longer reading.
SEND_SLICE = 0.05
#: The framing probe's silence after a first byte: an answer with no LF is
#: over (generous: the probe runs once, before the tests).
PROBE_QUIET = 0.5

#: The idle timeout given to the embedded reference server (``conformance run``
#: with no target), so that its idle-timeout test (ABP-CONN-7) takes a second.
EMBEDDED_IDLE_TIMEOUT = 1.0

# -- budgets (each used as ``budget(VALUE, timeout)``)
#: How long part of an answer may sit without its LF before it counts as
#: unterminated (ABP-FRAME-1), for a server that frames with LF.
STALL = 1.0
#: The same for a server known to answer with no LF (``--framing legacy``):
#: a few quiet periods, not a second per answer.
STALL_LEGACY = 3 * LEGACY_QUIET
#: How long another client may wait on a server held up by a slow one
#: (ABP-CONN-5) before it counts as held up: a person's patience, not the timeout.
HOLDUP = 1.5
#: How long a burst of connections (a crowd) may take to be accepted.
CROWD_CONNECT = 0.5
#: Over TLS, what each connection of a crowd adds to that: the CPU of one
#: handshake on both sides, not the server's concurrency (200 took 0.42 s).
TLS_HANDSHAKE = 0.01
#: How long a client that stops reading keeps sending its flood (ABP-CONN-5).
FLOOD = 1.0
#: How long a client leaves its answers unread before it reads again
#: (ABP-CONN-1): long enough for the server to fill the sockets and pause its
#: writes; never more than half the server's idle timeout, when known.
READING_PAUSE = 0.5
#: How long a server may take to send something nobody asked for (ABP-TRANSPORT).
UNSOLICITED = 0.2
#: How long past its idle timeout a server may take to close (ABP-CONN-7).
IDLE_GRACE = 2.0
#: A first look at a client that stopped reading, this long past the idle
#: timeout (ABP-CONN-7): most servers have closed by then. Looking means
#: reading, which is activity: a connection still open is given the whole
#: ``IDLE_GRACE`` on a second try.
IDLE_EARLY = 0.5
#: Reading what a server held for a client that stopped reading (ABP-CONN-7):
#: how long the bytes may stop coming before the connection counts as still
#: open. A server that closed queued its end of stream behind its last byte,
#: so it comes at once: this is margin for a busy machine.
IDLE_DRAIN_QUIET = 0.5
#: ... and how long the whole read may take (megabytes: a tenth of a second
#: on loopback).
IDLE_DRAIN = 5.0
#: How long the connections of a client under test may take to show closed
#: at the client suite's scripted server once the client has exited (ABP-CONN-9).
CLIENT_CLOSE = 2.0


# -- the bound on a whole test
#: A test's hard deadline is this much, plus ``DEADLINE_TIMEOUTS`` times
#: ``--timeout``, plus the server's idle timeout when known (the idle-timeout
#: test waits that long on purpose): a backstop that no wait should reach, so
#: that no server can hold one test, and so the run, for ever.
TEST_DEADLINE = 60.0
DEADLINE_TIMEOUTS = 10


def hard_deadline(timeout: float, idle_timeout: float | None = None) -> float:
    """The hard deadline of one test, in seconds (see ``TEST_DEADLINE``)."""
    return TEST_DEADLINE + DEADLINE_TIMEOUTS * timeout + (idle_timeout or 0.0)


def budget(value: float, timeout: float) -> float:
    """A budget under ``--timeout``: ``value`` at the default, scaled up with a
    longer ``--timeout``, and never longer than ``--timeout`` itself."""
    return min(value * max(1.0, timeout / TIMEOUT), timeout)
