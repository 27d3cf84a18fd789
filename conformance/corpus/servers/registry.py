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


# ------------------------------------------------------- correct variants


@dataclass(frozen=True)
class Variant:
    """A correct server that differs from the reference by one allowed choice:
    the acquittal corpus. The suite must pass it: exit 0, no FAIL, no WARN."""

    name: str
    choice: str  # what it does that the reference does not
    allowed_by: str  # the words of docs/spec.md that allow it, quoted verbatim
    requirements: tuple[str, ...]  # where those words are (IDs, or "section N")
    server: type[Server]
    service: str = "abp"  # "counter": run the suite with --service counter
    #: what the server is started with and the suite told, past the defaults
    server_args: tuple[str, ...] = ()
    suite_args: tuple[str, ...] = ()


VARIANTS: dict[str, Variant] = {}


def variant(
    name: str,
    choice: str,
    allowed_by: str,
    *requirements: str,
    service: str = "abp",
    server_args: tuple[str, ...] = (),
    suite_args: tuple[str, ...] = (),
) -> Callable[[type[Server]], type[Server]]:
    def register(cls: type[Server]) -> type[Server]:
        VARIANTS[name] = Variant(
            name, choice, allowed_by, requirements, cls, service, server_args, suite_args
        )
        return cls

    return register
