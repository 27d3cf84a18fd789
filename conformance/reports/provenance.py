"""Where a result came from, so that it still means something elsewhere.

Every report (console, JSON, JUnit, HTML, Markdown, the matrix's) carries a
``Provenance``: the toolkit's version, a hash of the spec text it judged
against, the Python and the platform that ran it, the full command line, the
seed and the start time. The target itself is the run's own ``target`` dict;
``target_items`` turns it into readable label/value pairs (no raw ``None`` or
``False``).
"""

from __future__ import annotations

import hashlib
import platform
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from functools import cache
from typing import Any

from protocol import program, requirements

toolkit_version = cache(program.toolkit_version)


@cache
def spec_sha256() -> str:
    """SHA-256 of the spec text the requirement catalogue is read from."""
    return hashlib.sha256(requirements.spec_path().read_bytes()).hexdigest()


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Provenance:
    toolkit: str = ""  # the abp-toolkit version
    spec_sha256: str = ""  # of docs/spec.md as installed
    python: str = ""  # e.g. "3.12.3 (CPython)"
    platform: str = ""  # e.g. "Linux-6.1.0-x86_64-with-glibc2.36"
    command: str = ""  # the full command line, shell-quoted
    seed: int | None = None
    started: str = ""  # ISO 8601, UTC

    @classmethod
    def here(
        cls, argv: Sequence[str] | None = None, *, seed: int | None = None, started: str = ""
    ) -> Provenance:
        """This process: its toolkit, spec, Python and platform, and ``argv``
        (default: ``sys.argv``, the program shown as it is typed)."""
        args = list(sys.argv if argv is None else argv)
        if argv is None and args:
            args[:1] = program_words(args[0])
        return cls(
            toolkit=toolkit_version(),
            spec_sha256=spec_sha256(),
            python=f"{platform.python_version()} ({platform.python_implementation()})",
            platform=platform.platform(),
            command=shlex.join(args),
            seed=seed,
            started=started or now_utc(),
        )

    @property
    def spec_short(self) -> str:
        return self.spec_sha256[:12]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> Provenance:
        if not isinstance(data, Mapping):
            return cls()
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        seed = values.get("seed")
        values["seed"] = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
        for key in known - {"seed"}:
            values[key] = str(values.get(key, "") or "")
        return cls(**values)

    def items(self) -> list[tuple[str, str]]:
        """Label/value pairs for the reports, in reading order; empty ones left out."""
        pairs = [
            ("command", self.command),
            ("started", self.started),
            ("seed", "" if self.seed is None else str(self.seed)),
            ("toolkit", f"abp-toolkit {self.toolkit}" if self.toolkit else ""),
            ("spec", f"sha256 {self.spec_sha256}" if self.spec_sha256 else ""),
            ("python", self.python),
            ("platform", self.platform),
        ]
        return [(label, value) for label, value in pairs if value]


def program_words(path: str) -> list[str]:
    """``/x/.venv/bin/conformance`` -> ``conformance``; a ``python -m
    conformance`` run (``.../conformance/__main__.py``) -> ``python -m conformance``."""
    parts = path.replace("\\", "/").rsplit("/", 2)
    if parts[-1] == "__main__.py" and len(parts) > 1:
        return ["python", "-m", parts[-2]]
    return [parts[-1]]


#: the run's target dict, as the runner fills it: key -> label
_TARGET_LABELS = {
    "address": "server",
    "service": "service",
    "framing": "framing",
    "framing_reason": "framing found by",
    "server_cmd": "server command",
    "client": "client (argv)",
    "client-menu": "client (menu)",
    "listen": "scripted server",
    "suite": "suite",
    "workers": "workers",
    "server_exit_status": "server exited with status",
}
_HIDDEN_TARGET = {"seed", "embedded"}  # the seed is shown once, with the provenance


def target_items(target: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The target as a person reads it: labelled, no ``None``/``False`` values,
    the embedded reference server said in words."""
    out: list[tuple[str, str]] = []
    if target.get("embedded"):
        out.append(("server is", "the embedded reference server (started by the suite)"))
    for key, value in target.items():
        if key in _HIDDEN_TARGET or value is None or value is False or value == "":
            continue
        label = _TARGET_LABELS.get(key, key.replace("_", " "))
        text = "yes" if value is True else str(value)
        out.append((label, text))
    return out


def target_summary(target: Mapping[str, Any]) -> str:
    """One phrase naming the target: ``abp server at 127.0.0.1:2007``."""
    if target.get("address"):
        return f"{target.get('service', 'abp')} server at {target['address']}"
    for key in ("client", "client-menu"):
        if target.get(key):
            return f"client {target[key]}"
    return "(unknown target)"
