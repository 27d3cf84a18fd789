"""``protocol.program``: one command-line convention for every program."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from protocol import program


@pytest.mark.parametrize(
    ("validator", "text", "value"),
    [
        (program.positive_int, "3", 3),
        (program.non_negative_int, "0", 0),
        (program.positive_float, "0.5", 0.5),
        (program.non_negative_float, "0", 0.0),
        (program.port_number(allow_zero=True), "0", 0),
        (program.port_number(), "2007", 2007),
        (program.host_name, "[::1]", "::1"),
        (program.address, "127.0.0.1:2007", ("127.0.0.1", 2007)),
        (program.address, "[::1]:7", ("::1", 7)),
    ],
)
def test_validators_accept(validator: object, text: str, value: object) -> None:
    assert validator(text) == value  # type: ignore[operator]


@pytest.mark.parametrize(
    ("validator", "text"),
    [
        (program.positive_int, "0"),
        (program.positive_int, "x"),
        (program.non_negative_int, "-1"),
        (program.positive_float, "0"),
        (program.positive_float, "nan"),
        (program.positive_float, "inf"),
        (program.non_negative_float, "-0.1"),
        (program.port_number(), "0"),
        (program.port_number(allow_zero=True), "65536"),
        (program.host_name, "7801"),
        (program.address, "7801"),
        (program.address, "7801:2007"),
        (program.address, "host"),
    ],
)
def test_validators_refuse(validator: object, text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        validator(text)  # type: ignore[operator]


def test_a_usage_error_is_one_line_and_exit_2() -> None:
    code = (
        "from protocol.program import ProgramParser, positive_int\n"
        "p = ProgramParser(prog='demo'); p.add_argument('--n', type=positive_int)\n"
        "p.parse_args(['--n', '0'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == program.EXIT_USAGE == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("demo: error: argument --n: must be a whole number >= 1")
    assert done.stderr.rstrip().endswith("(see demo --help)")


def test_raise_fd_limit_reaches_the_hard_limit() -> None:
    resource = pytest.importorskip("resource")
    soft = program.raise_fd_limit()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == (None if hard == resource.RLIM_INFINITY else hard)


@pytest.mark.parametrize("program_name", ["abp-server", "abp-client", "conformance"])
def test_every_program_says_its_version(program_name: str) -> None:
    path = Path(sys.executable).parent / program_name  # installed beside this Python
    done = subprocess.run(
        [path, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert done.stdout.startswith(f"{program_name} (abp-toolkit) ")
    assert done.stdout.strip().split()[-1] == program.toolkit_version()
