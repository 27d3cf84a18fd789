"""``conformance bench``: load an ABP/1 server and check it kept every acknowledged write.

The command line is ``conformance.bench.cli``; ``run_bench(BenchConfig(...))``
is the same run for scripts (``benchmarks/``).
"""

from conformance.bench.report import BenchResult
from conformance.bench.run import BenchConfig, BenchError, Mix, run_bench

__all__ = ["BenchConfig", "BenchError", "BenchResult", "Mix", "run_bench"]
