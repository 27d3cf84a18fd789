"""``conformance bench``: load an ABP/1 server and check it kept every acknowledged write.

The CLI is ``conformance.bench.cli``; ``run_bench(BenchConfig(...))`` is the
same run for scripts (``benchmarks/``).
"""

from conformance.bench.config import BenchConfig, ConfigError, Mix
from conformance.bench.result import BenchResult
from conformance.bench.runner import BenchError, run_bench

__all__ = ["BenchConfig", "BenchError", "BenchResult", "ConfigError", "Mix", "run_bench"]
