"""The registry of corpus servers: a name, the requirement(s) the suite must
fail it on, and what the suite needs to see the defect.

Each defect is registered with ``@defect(...)`` on a subclass of
``base.Server`` that overrides one step (two at most, when one bug shows in
two places). The defect modules register on import; ``defects`` imports them
all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conformance.corpus.servers.base import Server
from protocol import Error, RemoteProtocolError
from protocol.codec import MALFORMED_REQUEST


@dataclass(frozen=True)
class Defect:
    name: str
    summary: str
    requirements: tuple[str, ...]  # the suite must FAIL every one of these
    server: type[Server]
    needs_server_cmd: bool = False  # caught only by restart/SIGKILL tests
    service: str = "abp"  # "counter": run the suite with --service counter
    should: bool = False  # a SHOULD is broken: a WARN, which fails the run with --strict


DEFECTS: dict[str, Defect] = {}


def defect(
    name: str,
    summary: str,
    *requirements: str,
    needs_server_cmd: bool = False,
    service: str = "abp",
    should: bool = False,
) -> Callable[[type[Server]], type[Server]]:
    def register(cls: type[Server]) -> type[Server]:
        DEFECTS[name] = Defect(name, summary, requirements, cls, needs_server_cmd, service, should)
        return cls

    return register


def malformed(why: str, requirement: str) -> RemoteProtocolError:
    return RemoteProtocolError(why, requirement, Error(MALFORMED_REQUEST))


# ------------------------------------------------------------------ controls

defect("correct", "no defect: the control, which must pass everything")(Server)
defect("correct-counter", "no defect, counter service: must pass", service="counter")(Server)
