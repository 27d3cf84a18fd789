"""What one benchmark run is asked to do, checked once, before anything starts.

Parsing here is of command-line values (``fnd:80,add:20``, ``HOST:PORT``),
never of wire text. A bad value raises ``ConfigError`` with a one-line message
that the CLI prints as is (exit status 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.address import AddressError
from protocol.address import parse_address as _parse_address

COMMANDS = ("fnd", "add", "rem")
FRAMINGS = ("auto", "line", "legacy")

#: Names each load connection owns (its keyspace); see ``worker``.
DEFAULT_KEYS = 16
#: A run with --requests but no --duration still ends after this long.
REQUESTS_TIME_CAP = 120.0


class ConfigError(ValueError):
    """A bad option value; the message is one line for the user."""


@dataclass(frozen=True)
class Mix:
    """Weights of the three commands; ``fnd:80,add:15,rem:5``."""

    fnd: int = 100
    add: int = 0
    rem: int = 0

    @classmethod
    def parse(cls, text: str) -> Mix:
        weights = dict.fromkeys(COMMANDS, 0)
        seen: set[str] = set()
        for item in text.split(","):
            command, sep, weight = item.strip().partition(":")
            if not sep or command not in weights:
                raise ConfigError(
                    f"bad --mix item {item.strip()!r}: want COMMAND:WEIGHT, COMMAND one of "
                    + ", ".join(COMMANDS)
                )
            if command in seen:
                raise ConfigError(f"bad --mix: {command} given twice")
            seen.add(command)
            if not weight.strip().isdigit():
                raise ConfigError(f"bad --mix weight {weight!r} for {command}: not a whole number")
            weights[command] = int(weight)
        if sum(weights.values()) <= 0:
            raise ConfigError("bad --mix: the weights add up to 0")
        return cls(**weights)

    def as_dict(self) -> dict[str, int]:
        return {"fnd": self.fnd, "add": self.add, "rem": self.rem}

    def __str__(self) -> str:
        return ",".join(f"{name}:{weight}" for name, weight in self.as_dict().items() if weight)

    def sequence(self, length: int = 100) -> list[str]:
        """``length`` commands in the mix's proportions (the caller shuffles)."""
        total = self.fnd + self.add + self.rem
        out: list[str] = []
        for name, weight in self.as_dict().items():
            out.extend([name] * round(length * weight / total))
        while len(out) < length:  # rounding: top up with the heaviest command
            out.append(max(self.as_dict().items(), key=lambda item: item[1])[0])
        return out[:length]


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT``; only loopback is ever contacted."""
    try:
        return _parse_address(text.strip())
    except AddressError as exc:
        raise ConfigError(f"bad address: {exc}") from None


@dataclass(frozen=True)
class BenchConfig:
    """One run. ``host``/``port`` are filled in once the server is known."""

    host: str = "127.0.0.1"
    port: int = 0
    connections: int = 10
    duration: float = 5.0
    requests: int | None = None
    mix: Mix = field(default_factory=Mix)
    pipeline: int = 1
    processes: int = 1
    framing: str = "auto"
    idle: int = 0
    bystander: bool = False
    keys: int = DEFAULT_KEYS
    timeout: float = 10.0
    data_check: bool = True
    progress: bool = True
    server_pid: int | None = None

    def check(self) -> BenchConfig:
        """Raise ``ConfigError`` for values no run can use."""
        if self.connections < 1:
            raise ConfigError("--connections must be at least 1")
        if not 0 < self.duration <= 3600:
            raise ConfigError("--duration must be more than 0 and at most 3600 seconds")
        if self.requests is not None and self.requests < 1:
            raise ConfigError("--requests must be at least 1")
        if not 1 <= self.pipeline <= 1024:
            raise ConfigError("--pipeline must be 1..1024")
        if not 1 <= self.processes <= 64:
            raise ConfigError("--processes must be 1..64")
        if self.framing not in FRAMINGS:
            raise ConfigError(f"--framing must be one of {', '.join(FRAMINGS)}")
        if not 0 <= self.idle <= 100_000:
            raise ConfigError("--idle must be 0..100000")
        if not 1 <= self.keys <= 100_000:
            raise ConfigError("--keys must be 1..100000")
        if not 0 < self.timeout <= 600:
            raise ConfigError("--timeout must be more than 0 and at most 600 seconds")
        return self


__all__ = [
    "COMMANDS",
    "DEFAULT_KEYS",
    "FRAMINGS",
    "REQUESTS_TIME_CAP",
    "BenchConfig",
    "ConfigError",
    "Mix",
    "parse_address",
]
