"""Hypothesis against a live server: reproducible settings and an oracle.

Runs are reproducible from ``--seed`` alone: examples are drawn from the seed,
nothing is kept in an example database, and there is no shrinking (each
shrink step is a round trip to a server that may be slow or broken; the first
failing example is reported as found, with its own transcript). What a bad
line may be answered is ``conformance.judging.session.refusal`` (every error
section 4 allows, from ``protocol.codec.applicable_errors``), never one
implementation's check order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, seed, settings

from conformance.harness.wire import Transcript
from conformance.judging.session import ServerSession, ServerTarget

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
