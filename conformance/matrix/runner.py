"""Running the matrix: every client against every server, pairs in parallel.

For each pair the server starts fresh on a free port (``ServerProcess``, its
own ``{tmpdir}``), a recording ``Relay`` sits in front of it, every interop
scenario runs in turn, and the server is stopped by its PID. A client run is
killed at the config's timeout and reported as a hang.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from conformance.harness.process import ServerProcess, ServerStartError, render, wait_until
from conformance.harness.wire import Transcript
from conformance.matrix.cells import Cell, ScenarioResult
from conformance.matrix.config import ClientSpec, MatrixConfig, ServerSpec
from conformance.matrix.relay import Relay
from conformance.matrix.scenarios import ERROR, OK, SCENARIOS, InteropScenario, Step
from conformance.suites.client.contracts import MENU_QUIT, menu_script
from conformance.suites.client.launch import ClientRun, ClientStartError, LiveProcess, run_client


class StepFailed(Exception):
    """A step did not behave as the scenario expects; the message says how."""


# ------------------------------------------------------------------ judging


def _judge(step: Step, run: ClientRun, contract: str, transcript: Transcript) -> None:
    if run.timed_out:
        raise StepFailed(f"{step.describe()}: {run.status_text()}")
    if run.traceback:
        raise StepFailed(f"{step.describe()}: the client crashed with a traceback")
    _judge_output(step, run.stdout, run.output, contract, run)


def _last_words(stderr: str, limit: int = 200) -> str:
    """The client's own last line on stderr (what it says arrived), cut to ``limit``."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]
    return last if len(last) <= limit else last[:limit] + "..."


def _judge_output(step: Step, stdout: str, output: str, contract: str, run: ClientRun) -> None:
    if contract == "argv":
        if step.expect == OK and run.returncode != 0:
            said = _last_words(run.stderr)
            raise StepFailed(
                f"{step.describe()}: expected exit 0, got {run.status_text()}"
                + (f"; the client said: {said}" if said else "")
            )
        if step.expect == ERROR and run.returncode == 0:
            raise StepFailed(f"{step.describe()}: expected an error (non-zero exit), got exit 0")
    elif step.expect == OK and "ERROR" in output:
        raise StepFailed(f"{step.describe()}: expected success, the client showed an ERROR")
    # Every error step is a name with no entry: the spec's "ERROR: No entry for
    # NAME" and the tutorial's "No entry found for NAME" both say so; a timeout
    # or a reset does not.
    if step.expect == ERROR and "no entry" not in output.lower():
        raise StepFailed(f"{step.describe()}: expected 'No entry ...' to be shown")
    if step.shows and step.shows not in stdout:
        raise StepFailed(f"{step.describe()}: expected the output to show {step.shows!r}")
    if step.hides and step.hides in stdout:
        raise StepFailed(f"{step.describe()}: the output shows {step.hides!r}, which it must not")


# ------------------------------------------------------------------ running


def _argv(spec: ClientSpec, host: str, port: int, step: Step) -> list[str]:
    op = step.op
    return render(list(spec.command), host=host, port=port, op=op.op, name=op.name, entry=op.entry)


def _run_steps(
    spec: ClientSpec, relay: Relay, scenario: InteropScenario, timeout: float, tr: Transcript
) -> None:
    for step in scenario.steps:
        tr.note("--", f"step: {step.describe()}")
        if spec.contract == "argv":
            argv = _argv(spec, relay.host, relay.port, step)
            run = run_client(argv, deadline=timeout, transcript=tr)
        else:
            argv = render(list(spec.command), host=relay.host, port=relay.port)
            stdin = menu_script([step.op])
            run = run_client(argv, deadline=timeout, stdin=stdin, transcript=tr)
        _judge(step, run, spec.contract, tr)


def _run_live(
    spec: ClientSpec, relay: Relay, scenario: InteropScenario, timeout: float, tr: Transcript
) -> None:
    """Menu clients A and B alive at once; each command waits for the server's
    answer (seen at the relay) before the other client's next command."""
    argv = render(list(spec.command), host=relay.host, port=relay.port)
    live: dict[str, LiveProcess] = {}
    try:
        for who in dict.fromkeys(step.by for step in scenario.steps):
            live[who] = LiveProcess(argv)
            tr.note("cli", f"client {who} started: {' '.join(argv)}")
        for step in scenario.steps:
            tr.note("--", f"step: {step.describe()}")
            before = relay.answers
            live[step.by].feed(menu_script([step.op], quit_=False))
            if not wait_until(lambda before=before: relay.answers > before, timeout):
                raise StepFailed(f"{step.describe()}: no answer reached the client in {timeout:g}s")
        runs: dict[str, ClientRun] = {}
        for who, process in live.items():
            process.feed(MENU_QUIT + "\n")
            runs[who] = process.finish(timeout)
            tr.note("cli", f"client {who}:")
            runs[who].note_in(tr)
        for step in scenario.steps:
            run = runs[step.by]
            if run.timed_out or run.traceback:
                _judge(step, run, spec.contract, tr)
            _judge_output(step, run.stdout, run.output, spec.contract, run)
    finally:
        for process in live.values():
            process.kill()


def run_scenario(
    spec: ClientSpec, relay: Relay, scenario: InteropScenario, timeout: float, tr: Transcript
) -> str | None:
    """Run one scenario, the relay recording into ``tr``: why it failed (None: it passed)."""
    relay.use(tr)
    try:
        if scenario.live and spec.contract == "menu":
            _run_live(spec, relay, scenario, timeout, tr)
        else:
            _run_steps(spec, relay, scenario, timeout, tr)
    except (StepFailed, ClientStartError) as exc:
        return str(exc)
    return None


def run_cell(
    client: ClientSpec,
    server: ServerSpec,
    timeout: float,
    scenarios: Sequence[InteropScenario] = SCENARIOS,
) -> Cell:
    started = time.monotonic()
    ran: list[tuple[str, bool, str, float, Transcript]] = []  # as ``ScenarioResult.recorded``
    with (
        tempfile.TemporaryDirectory(prefix="abp-matrix-") as tmpdir,
        contextlib.ExitStack() as stack,
    ):
        command = [word.replace("{tmpdir}", tmpdir) for word in server.command]
        process = ServerProcess(command)
        stack.push(process)  # stopped by PID, its stderr file closed, started or not
        try:
            process.start()
        except (ServerStartError, KeyError, ValueError) as exc:
            dead = f"the server did not start: {str(exc).splitlines()[0]}"
            results = tuple(ScenarioResult(s.name, False, dead) for s in scenarios)
            return Cell(client.name, server.name, results, time.monotonic() - started)
        with Relay(process.address, host=process.host) as relay:
            for scenario in scenarios:
                transcript = Transcript()
                began = time.monotonic()
                why = run_scenario(client, relay, scenario, timeout, transcript)
                took = time.monotonic() - began
                if not process.running:  # then no scenario passes
                    why = "; ".join(filter(None, [why, _died(process)]))
                ran.append((scenario.name, why is None, why or "", took, transcript))
    # the relay has stopped: what it saw after a scenario ended (a close, a
    # reset) is in that scenario's transcript too
    results = tuple(ScenarioResult.recorded(*one) for one in ran)
    return Cell(client.name, server.name, results, time.monotonic() - started)


def _died(process: ServerProcess) -> str:
    status = process.process.returncode if process.process is not None else None
    lines = [line for line in process.stderr_text().splitlines() if line.strip()]
    last = f"; its last words: {lines[-1].strip()}" if lines else ""
    return f"the server exited (status {status}){last}"


def pairs_of(
    config: MatrixConfig, shard: tuple[int, int] | None = None
) -> list[tuple[ClientSpec, ServerSpec]]:
    """Every (client, server) pair in config order, or the ``K/N`` shard of them:
    every N-th pair from the K-th on. Stable: the same config always splits the
    same way, and the N shards together hold every pair exactly once."""
    pairs = [(c, s) for c in config.clients for s in config.servers]
    if shard is None:
        return pairs
    k, n = shard
    return pairs[k - 1 :: n]


def run_matrix(
    config: MatrixConfig,
    *,
    workers: int = 2,
    on_cell: Callable[[Cell], None] | None = None,
    scenarios: Sequence[InteropScenario] = SCENARIOS,
    shard: tuple[int, int] | None = None,
) -> list[Cell]:
    """Every (client, server) cell of the shard, in config order; pairs run
    ``workers`` at a time."""
    pairs = pairs_of(config, shard)

    def one(pair: tuple[ClientSpec, ServerSpec]) -> Cell:
        cell = run_cell(pair[0], pair[1], config.timeout, scenarios)
        if on_cell is not None:
            on_cell(cell)
        return cell

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(one, pairs))
