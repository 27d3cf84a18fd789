"""What every ABP program's command line shares (the spec's ``program`` role).

``abp-server``, ``abp-client``, ``conformance`` and the corpus programs build
their parsers from ``ProgramParser`` and their options from the validators
here, so that a usage error reads the same everywhere (one line on stderr,
exit 2, as argparse and the docs say) and ``--timeout 0`` is refused with
the same words by every program.
"""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Callable
from typing import NoReturn

from protocol.address import AddressError, parse_address, parse_host, parse_port

EXIT_OK = 0
#: argparse's own status for a bad command line, kept by every program.
EXIT_USAGE = 2
#: 128 + SIGINT, as shells report a program stopped by Ctrl-C.
EXIT_INTERRUPTED = 130


DISTRIBUTION = "abp-toolkit"


def toolkit_version() -> str:
    """The installed distribution's version (``0+unknown`` outside an install)."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def add_version(parser: argparse.ArgumentParser) -> None:
    """``--version``: prints ``PROG (abp-toolkit X.Y.Z)`` and exits 0."""
    parser.add_argument(
        "--version",
        action="version",
        version=f"{parser.prog} ({DISTRIBUTION}) {toolkit_version()}",
        help="print the program's version and exit",
    )


class ProgramParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, ``PROG: error: MESSAGE (see
    PROG --help)``, and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(text: str, kind: type[int] | type[float]) -> float:
    try:
        value = kind(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):  # NaN, infinities
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (a count)."""
    if not text.strip().isascii() or not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1: {text!r}")
    return int(text)


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (a seed, a count that may be zero)."""
    if not text.strip().isascii() or not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0: {text!r}")
    return int(text)


def positive_float(text: str) -> float:
    """A finite number > 0 (seconds)."""
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number greater than 0: {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (seconds; 0 switches a timer off where a program says so)."""
    value = _number(text, float)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0: {text!r}")
    return value


def port_number(*, allow_zero: bool = False) -> Callable[[str], int]:
    """A validator for a TCP port; ``allow_zero`` where a program listens (0: any free port)."""

    def convert(text: str) -> int:
        try:
            return parse_port(text.strip(), allow_zero=allow_zero)
        except AddressError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = "port"
    return convert


def host_name(text: str) -> str:
    """A host on its own: a name, IPv4, or IPv6 with or without brackets.

    A bare number (``7801``) is refused: as a host it names an address off this
    machine, which is never what was meant (a port was)."""
    if text.strip().isdigit():
        raise argparse.ArgumentTypeError(
            f"{text!r} is a number, not a host (did you mean --port {text.strip()}?)"
        )
    try:
        return parse_host(text)
    except AddressError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPV6]:PORT``; a bare number is refused (see ``host_name``)."""
    if text.strip().isdigit():
        raise argparse.ArgumentTypeError(
            f"{text!r} is a port, not an address: write HOST:PORT, as in 127.0.0.1:{text.strip()}"
        )
    try:
        host, port = parse_address(text.strip())
    except AddressError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    host_name(host)
    return host, port


def raise_fd_limit() -> int | None:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit now
    in force (None where the platform has no such limit)."""
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):  # keep the old limit on failure
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft
