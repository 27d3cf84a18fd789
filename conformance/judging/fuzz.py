"""Hypothesis against a live server: reproducible settings and an oracle.

Runs are reproducible from ``--seed`` alone: examples are drawn from the seed,
nothing is kept in an example database, and there is no shrinking (each
shrink step is a round trip to a server that may be slow or broken; the first
failing example is reported as found, with its own transcript). The oracle
for bad input is the protocol package's own ``ServerConnection``: what it
answers a line is what the spec says a server answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, seed, settings

from conformance.harness.wire import Transcript
from conformance.judging.session import ServerSession, ServerTarget
from protocol import Error, InvalidRequest, ServerConnection, ServerEvent
from protocol.codec import INVALID_UTF8, MALFORMED_REQUEST

T = TypeVar("T")


def fuzz_settings(target: ServerTarget, **overrides: Any) -> settings:
    """Settings for a run against ``target``: ``--fuzz-examples`` examples, no
    deadline (latency is the network's), no database, no shrinking."""
    options: dict[str, Any] = {
        "max_examples": max(1, target.fuzz_examples),
        "deadline": None,
        "database": None,
        "derandomize": False,
        "phases": (Phase.explicit, Phase.generate),
        "suppress_health_check": list(HealthCheck),
        "print_blob": False,
        "report_multiple_bugs": False,
    }
    options.update(overrides)
    return settings(**options)


def seeded(target: ServerTarget, test: T) -> T:
    """``test`` (a @given test or a state machine class) seeded by ``--seed``."""
    return seed(target.seed)(test)  # type: ignore[type-var]


def fresh_example(abp: ServerSession) -> None:
    """Start an example: close the last one's connections and give it its own
    transcript, so that a failure shows only the example that failed."""
    abp.close()
    abp.transcript = Transcript()


def run_seeded(abp: ServerSession, test: Callable[[], None]) -> None:
    """Call a @given-decorated ``test`` with the target's seed and settings."""
    seeded(abp.target, fuzz_settings(abp.target)(test))()


def oracle(line: bytes) -> list[ServerEvent]:
    """What an ABP/1 server makes of ``line`` (LF included): the protocol
    package's reading, quiet period off."""
    return ServerConnection(quiet_period=None).receive_data(line, 0.0)


def expected_refusal(line: bytes) -> InvalidRequest | None:
    """How an ABP/1 server refuses one bad line (``.reply`` is the standard
    error, ``.error.requirement`` the rule), or None when it is a request."""
    events = oracle(line)
    if len(events) == 1 and isinstance(events[0], InvalidRequest):
        return events[0]
    return None


def allowed_refusals(refusal: InvalidRequest) -> set[Error] | None:
    """The answers a bad line may get. A line that breaks two rules (NUL and
    invalid UTF-8) may get either error: the spec sets no precedence."""
    raw = refusal.raw
    allowed = {refusal.reply}
    if b"\x00" in raw or b"\r" in raw:  # ABP-FRAME-13
        allowed.add(Error(MALFORMED_REQUEST))
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        allowed.add(Error(INVALID_UTF8))
    return allowed
