"""What one benchmark run found, merged across its load processes."""

from __future__ import annotations

from dataclasses import dataclass, field

from conformance.bench.bystanders import Bystander, IdleOutcome
from conformance.bench.config import BenchConfig
from conformance.bench.keyspace import Tally, Verification
from conformance.bench.stats import Histogram


@dataclass
class BenchResult:
    config: BenchConfig
    framing: str = "line"
    pipeline: int = 1
    processes: int = 1
    prefix: str = ""
    notes: list[str] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    preload: Tally = field(default_factory=Tally)
    histogram: Histogram = field(default_factory=Histogram)
    verification: Verification | None = None
    elapsed: float = 0.0
    connected: int = 0
    served_in_time: int = 0
    worker_cpu: list[float] = field(default_factory=list)  # share of one core, per process
    worker_errors: list[str] = field(default_factory=list)
    server_cpu: float | None = None  # share of one core during the timed phase
    server_cpu_seconds: float | None = None  # CPU the server used in the timed phase
    worker_cpu_seconds: float = 0.0  # CPU the load processes used in the timed phase
    rss_kb: dict[str, int | None] = field(default_factory=dict)
    bystander: Bystander | None = None
    idle: IdleOutcome | None = None

    @property
    def answered(self) -> int:
        return sum(self.tally.answered)

    @property
    def throughput(self) -> float:
        return self.answered / self.elapsed if self.elapsed > 0 else 0.0

    def cpu_per_request(self) -> tuple[float | None, float | None]:
        """Microseconds of CPU per answer: (load processes, server). Unlike
        throughput, this hardly depends on what else the machine runs."""
        if not self.answered:
            return None, None
        load = self.worker_cpu_seconds / self.answered * 1e6
        server = self.server_cpu_seconds
        return load, None if server is None else server / self.answered * 1e6

    @property
    def data_failures(self) -> int:
        """Malformed answers, wrong answers and lost writes: any makes exit 1."""
        count = self.tally.malformed + self.tally.wrong
        count += self.preload.malformed + self.preload.wrong
        if self.verification is not None:
            count += self.verification.lost + self.verification.unexpected
        if self.bystander is not None:
            count += self.bystander.tally.malformed + self.bystander.tally.wrong
        return count


__all__ = ["BenchResult"]
