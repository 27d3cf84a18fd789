"""abp-client run as a real subprocess, in an environment of the test's making.

Shared by the client tests against the reference server and against scripted
servers: no ``ABP_HOST``/``ABP_PORT`` leaks in from the caller's shell, and
the C locale shows that answers are UTF-8 whatever the locale.
"""

from __future__ import annotations

import os
import subprocess
import sys


def client_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ABP_HOST", "ABP_PORT")}
    env.update(LC_ALL="C", LANG="C")  # answers are UTF-8 whatever the locale
    env.update(extra)
    return env


def run_client(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reference_client", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
        env=env if env is not None else client_env(),
        timeout=timeout,
        check=False,
    )
