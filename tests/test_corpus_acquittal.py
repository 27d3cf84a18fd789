"""The conformance suite acquits: correct implementations that differ from the reference pass.

The acquittal corpus (``conformance.corpus.servers.variants`` and
``conformance.corpus.clients.variants``) holds correct servers and clients,
each making one choice the spec allows and the reference does not (another
order of checks, CRLF answers, one byte per write, a thread per connection,
another quiet period, ...). Every one must get exit 0 with no FAIL and no WARN
(a client variant that knowingly skips a SHOULD: WARNs on that SHOULD only),
with ``--server`` and with ``--server-cmd``, with one worker and with two, for
three ``--seed`` values. A false alarm here is a fault of the suite or of the
spec, never of the variant.

The full matrix (``corpus`` marker) is about 200 suite runs, some minutes on
two cores: ``addopts`` deselects it, and one tox environment runs it with
``pytest -m corpus``. The light tests below (the registry is sound, and the two
false alarms of issue 9 stay fixed) run everywhere.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

from conformance.corpus.clients.variants import VARIANTS as CLIENTS
from conformance.corpus.clients.variants import Variant as ClientVariant
from conformance.corpus.servers.defects import DEFECTS
from conformance.corpus.servers.harness import (
    SuiteRun,
    run_suite,
    variant_argv,
    variant_suite_args,
)
from conformance.corpus.servers.registry import Variant
from conformance.corpus.servers.variants import VARIANTS as SERVERS
from conformance.harness.process import ServerProcess
from conformance.judging.session import line_matches, refusal
from protocol import Error, requirements
from protocol.codec import INVALID_UTF8, MALFORMED_REQUEST, unrecognised

#: The deadline of one suite run (one takes 3 to 15 s).
RUN_TIMEOUT = 150.0
#: Three fuzzing seeds: the verdict must not depend on the examples drawn.
SEEDS = ("1", "2026", "914")
WORKERS = ("1", "2")
PY = shlex.quote(sys.executable)
SPEC = Path(__file__).resolve().parent.parent / "docs" / "spec.md"


def client_args(variant: ClientVariant) -> list[str]:
    command = (
        f"{PY} -m conformance.corpus.clients --variant {variant.name} --timeout 1"
        " -- {host} {port}"
    )
    if variant.contract == "menu":
        return ["--client-menu", command]
    return ["--client", command + " {op} {name} {entry}", "--timeout", "1.5"]


def assert_acquitted(run: SuiteRun, warns: tuple[str, ...] = (), *, ran: int = 20) -> None:
    """Exit 0, at least ``ran`` tests passed, no FAIL, and WARNs only on ``warns``."""
    failed = run.with_outcome("FAIL")
    assert not failed, run.explain()
    unexpected = [t for t in run.with_outcome("WARN") if set(run.blamed(t)) - set(warns)]
    assert not unexpected, run.explain()
    assert run.returncode == 0, run.explain()
    assert len(run.with_outcome("PASS")) >= ran, run.explain()
    assert "Traceback" not in run.stderr, run.stderr
    for rid in warns:  # a knowingly skipped SHOULD is seen, and only warned
        assert run.catches(rid), run.explain(rid)


# ------------------------------------------------------ the registry is sound


def _spec_text() -> str:
    return " ".join(SPEC.read_text(encoding="utf-8").split())


@pytest.mark.parametrize(
    "variant", [*SERVERS.values(), *CLIENTS.values()], ids=[*SERVERS, *CLIENTS]
)
def test_every_variant_quotes_the_spec_that_allows_it(variant: Variant | ClientVariant) -> None:
    """The declared permission is real: its words are in docs/spec.md, verbatim,
    and every ID it names exists."""
    assert " ".join(variant.allowed_by.split()) in _spec_text(), variant.allowed_by
    known = requirements.catalogue()
    for where in variant.requirements:
        assert where in known or re.fullmatch(r"section \d|terms", where), where
    assert variant.name == shlex.quote(variant.name)
    assert variant.choice


def test_the_corpus_is_large_enough_and_names_are_unique() -> None:
    assert len(SERVERS) >= 12
    assert len(CLIENTS) >= 5
    assert not set(SERVERS) & set(DEFECTS)
    assert {v.service for v in SERVERS.values()} == {"abp", "counter"}
    assert {v.contract for v in CLIENTS.values()} == {"argv", "menu"}


# ------------------------------------------ issue 9's false alarms, kept fixed


def test_utf8_checked_before_nul_is_not_failed(tmp_path: Path) -> None:
    """False alarm 1: a line with a NUL and invalid UTF-8 may be answered
    ``ERROR: Invalid UTF-8`` (section 4: any applicable error)."""
    variant = SERVERS["utf8-before-nul"]
    with ServerProcess([*variant_argv(variant), "--data", str(tmp_path / "data")]) as server:
        args = variant_suite_args(variant, f"{server.host}:{server.port}", workers=0)
        focus = [f"--requirement={rid}" for rid in ("ABP-FRAME-12", "ABP-FRAME-13", "ABP-RESP-3")]
        run = run_suite(*args, *focus, json_path=tmp_path / "r.json", timeout=RUN_TIMEOUT)
    assert_acquitted(run, ran=5)


def test_an_expected_error_stands_for_every_error_that_applies() -> None:
    """What the suite expects for a raw line (``refusal``, which ``abp.expect``
    uses for the reference's error): every error that applies (section 4)."""
    malformed, not_utf8 = Error(MALFORMED_REQUEST), Error(INVALID_UTF8)
    both = refusal(b"fnd:\xf4\x86\x00\xb7\x82")
    assert both.errors == frozenset({malformed, not_utf8})
    assert line_matches(both, b"ERROR: Invalid UTF-8\n")
    assert line_matches(both, b"ERROR: Malformed request\r\n")
    assert not line_matches(both, b"ERROR: Request too long\n")
    assert refusal(b"xyz:").errors == frozenset({unrecognised("xyz"), malformed})
    assert refusal(b"fnd:").errors == frozenset({malformed})  # one rule broken: one answer


def test_argv_client_sending_a_comma_in_a_fnd_name_is_warned_not_failed(tmp_path: Path) -> None:
    """False alarm 2: ``fnd:Smith, John`` sent unchanged breaks only the
    SHOULD of ABP-REQ-14; ABP-REQ-13 (MUST) holds."""
    variant = CLIENTS["comma-in-name-sent"]
    focus = ["--requirement", "ABP-REQ-13", "--requirement", "ABP-REQ-14", "--workers", "0"]
    run = run_suite(
        *client_args(variant), *focus, json_path=tmp_path / "r.json", timeout=RUN_TIMEOUT
    )
    assert_acquitted(run, warns=("ABP-REQ-14",), ran=5)
    assert not run.catches("ABP-REQ-13"), run.explain("ABP-REQ-13")


# ------------------------------------------------------- the whole matrix


@pytest.mark.corpus
@pytest.mark.parametrize("mode", ["server", "server-cmd"])
@pytest.mark.parametrize("variant", list(SERVERS.values()), ids=list(SERVERS))
def test_suite_acquits_correct_server(variant: Variant, mode: str, tmp_path: Path) -> None:
    """Every worker count and seed, against one server (``--server``: one
    process for the six runs; ``--server-cmd``: the suite starts its own)."""

    ran = 15 if variant.service == "counter" else 100  # the counter suite is small

    def judge(address: str | None) -> None:
        for workers in WORKERS:
            for seed in SEEDS:
                args = variant_suite_args(variant, address, workers=int(workers))
                report = tmp_path / f"n{workers}-seed{seed}.json"
                run = run_suite(*args, "--seed", seed, json_path=report, timeout=RUN_TIMEOUT)
                assert_acquitted(run, ran=ran)

    if mode == "server-cmd":
        judge(None)
        return
    with ServerProcess([*variant_argv(variant), "--data", str(tmp_path / "data")]) as server:
        judge(f"{server.host}:{server.port}")


@pytest.mark.corpus
@pytest.mark.parametrize("variant", list(CLIENTS.values()), ids=list(CLIENTS))
def test_client_suite_acquits_correct_client(variant: ClientVariant, tmp_path: Path) -> None:
    for workers in WORKERS:
        for seed in SEEDS:
            run = run_suite(
                *client_args(variant), "--workers", workers, "--seed", seed,
                json_path=tmp_path / f"n{workers}-seed{seed}.json", timeout=RUN_TIMEOUT,
            )  # fmt: skip
            assert_acquitted(run, warns=variant.warns)
