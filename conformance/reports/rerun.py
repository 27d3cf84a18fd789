"""The one command that reruns a single test against the same target.

From the run's own command line (``Provenance.command``): the target options
(``--server``, ``--server-cmd``, ``--service``, ``--framing``, ``--seed``,
``--timeout``, ...) stay; what selects tests, writes reports, stops early or
picks workers goes; ``-n 0 --test NODEID`` is added. Without a ``run``
subcommand in the command line there is no such command (``None``).
"""

from __future__ import annotations

import shlex

#: options of ``conformance run`` that take a value and are dropped
DROP_WITH_VALUE = frozenset(
    {
        "--requirement", "-k", "-n", "--workers", "--junit-xml", "--json", "--html",
        "--markdown", "--badge", "--baseline", "--maxfail", "--test",
    }
)  # fmt: skip
#: options without a value that are dropped
DROP_FLAGS = frozenset({"-q", "--quiet", "--no-transcripts", "-x", "--exitfirst"})
_SHORT_DROPPABLE = {"q", "x"}


def _dropped(word: str) -> tuple[bool, bool]:
    """(drop this word, and the next one too)."""
    if word in DROP_FLAGS:
        return True, False
    if word in DROP_WITH_VALUE:
        return True, True
    name, eq, _ = word.partition("=")
    if eq and name in DROP_WITH_VALUE:
        return True, False
    if word[:2] in ("-n", "-k") and len(word) > 2:  # -n2, -kfoo
        return True, False
    short_cluster = word.startswith("-") and not word.startswith("--") and len(word) > 2
    if short_cluster and set(word[1:]) <= _SHORT_DROPPABLE:  # -qx
        return True, False
    return False, False


def rerun_command(command: str, nodeid: str) -> str | None:
    """``command`` with the selection replaced by this one test."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if "run" not in words:
        return None
    at = words.index("run") + 1
    kept = words[:at]
    rest = iter(words[at:])
    for word in rest:
        if word == "--":
            break
        drop, skip_next = _dropped(word)
        if skip_next:
            next(rest, None)
        if not drop:
            kept.append(word)
    return shlex.join([*kept, "-n", "0", "--test", nodeid])
