"""What the bench reads about the machine and the server process (Linux /proc)."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from pathlib import Path


def raise_fd_limit(wanted: int) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (at most the hard limit);
    return (soft, hard) as they are afterwards (-1 for unlimited)."""
    try:
        import resource
    except ImportError:  # not a POSIX system: nothing to raise
        return (-1, -1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinity = resource.RLIM_INFINITY
    if soft != infinity and soft < wanted:
        target = wanted if hard == infinity else min(hard, max(wanted, soft))
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return (-1 if soft == infinity else soft, -1 if hard == infinity else hard)


def rss_kb(pid: int | None) -> int | None:
    """The resident set size of ``pid`` in KiB (VmRSS), None if unknown."""
    if pid is None:
        return None
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                return int(fields[1])
    return None


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of ``pid`` so far, None if unknown."""
    if pid is None:
        return None
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces
    fields = text[text.rfind(")") + 2 :].split()
    try:
        ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    except (IndexError, ValueError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, object]:
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "executable": sys.executable,
    }


__all__ = ["cpu_seconds", "machine", "raise_fd_limit", "rss_kb"]
