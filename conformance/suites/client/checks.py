"""Verdicts on a client run, each naming the requirement it judges.

Every check raises ``conformance.judging.verdict.RequirementFailed`` through ``fail``:
the requirement quoted, expected and actual shown, and the transcript (what
the client sent, what the scripted server answered, how the client exited and
what it printed) attached. A test passes the requirement it is about; a client
that hangs or crashes fails that requirement, with the reason said plainly.
"""

from __future__ import annotations

from collections.abc import Sequence

from conformance.judging.verdict import fail
from conformance.suites.client.contracts import Outcome
from conformance.suites.client.launch import TRACEBACK, ClientRun
from conformance.suites.client.scripted import ScriptedServer
from protocol import Request


def completed(rid: str, outcome: Outcome) -> None:
    """The client finished before its deadline and did not die of an exception."""
    hung = outcome.hung()
    if hung is not None:
        fail(
            rid,
            f"the client did not finish within {hung.deadline:g}s and was killed (a hang)",
            expected=f"an exit within {hung.deadline:g}s",
            actual=hung.status_text(),
        )
    crashed = next((run for run in outcome.runs if run.traceback), None)
    if crashed is not None:
        fail(
            rid,
            "the client crashed with a traceback",
            expected="a one-line message, no traceback",
            actual=_traceback_tail(crashed),
        )


def _traceback_tail(run: ClientRun) -> str:
    text = run.stderr if TRACEBACK in run.stderr else run.stdout
    lines = [line for line in text[text.index(TRACEBACK) :].splitlines() if line.strip()]
    return lines[-1] if lines else TRACEBACK


def exit_zero(rid: str, run: ClientRun, why: str) -> None:
    if run.returncode != 0:
        fail(
            rid,
            f"the client did not exit 0 {why}",
            expected="exit status 0",
            actual=run.status_text(),
        )


def exit_nonzero(rid: str, run: ClientRun, why: str) -> None:
    if run.returncode == 0:
        fail(
            rid,
            f"the client exited 0 {why}",
            expected="a non-zero exit status",
            actual=run.status_text(),
        )


def shown(rid: str, text: str, where: str, output: str) -> None:
    """``text`` appears, exactly, in ``output`` (``where`` names it for people)."""
    if text not in output:
        fail(
            rid,
            f"the client did not show the answer on {where}",
            expected=f"{where} holding {text!r}",
            actual=output if len(output) < 300 else output[:300] + "...",
        )


def sent(rid: str, server: ScriptedServer, expected: Sequence[Request]) -> None:
    """The client sent exactly these requests, in this order, and nothing else valid."""
    received = server.requests
    got = [r.request for r in received]
    if got != list(expected):
        fail(
            rid,
            "the client did not send the requests it was asked to",
            expected=list(expected),
            actual=[r.request if r.request is not None else r.problem for r in received],
        )


def nothing_sent(rid: str, server: ScriptedServer) -> None:
    count = server.bytes_received()
    if count:
        fail(
            rid,
            "the client sent bytes for input it had to refuse",
            expected="no byte sent",
            actual=f"{count} bytes sent: {[r.request or r.problem for r in server.requests]}",
        )


def no_violation(rid: str, server: ScriptedServer) -> None:
    """The scripted server saw no breach of ``rid`` on the wire."""
    for violation in server.violations:
        if violation.requirement == rid:
            fail(rid, violation.message)
