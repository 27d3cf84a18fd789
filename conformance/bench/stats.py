"""Latency histograms that merge across processes and stay small.

A latency is kept in microseconds rounded down to 11 significant bits (an
error under 0.1 %), so a run of millions of requests is a few thousand
buckets: cheap to record in the hot loop, cheap to send between processes.
"""

from __future__ import annotations

from collections.abc import Iterable

PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))
_PRECISION_BITS = 11


def bucket(microseconds: int) -> int:
    """The bucket (a value in microseconds) that holds ``microseconds``."""
    if microseconds < (1 << _PRECISION_BITS):
        return max(microseconds, 0)
    shift = microseconds.bit_length() - _PRECISION_BITS
    return (microseconds >> shift) << shift


class Histogram:
    """Counts of latencies by bucket."""

    __slots__ = ("counts",)

    def __init__(self, counts: dict[int, int] | None = None) -> None:
        self.counts: dict[int, int] = dict(counts or {})

    def record(self, seconds: float) -> None:
        key = bucket(int(seconds * 1_000_000))
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1

    def merge(self, other: Histogram) -> None:
        counts = self.counts
        for key, count in other.counts.items():
            counts[key] = counts.get(key, 0) + count

    @classmethod
    def merged(cls, histograms: Iterable[Histogram]) -> Histogram:
        total = cls()
        for histogram in histograms:
            total.merge(histogram)
        return total

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def percentile(self, percent: float) -> float | None:
        """The latency in milliseconds at ``percent``, None when empty."""
        total = self.total
        if not total:
            return None
        rank = max(1, -(-total * percent // 100))  # ceil: the nearest-rank method
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return key / 1000
        return max(self.counts) / 1000  # pragma: no cover - rank <= total

    def summary(self) -> dict[str, float | None]:
        """p50, p90, p99, p99.9, max and mean, in milliseconds."""
        out: dict[str, float | None] = {
            label: self.percentile(percent) for label, percent in PERCENTILES
        }
        total = self.total
        out["max"] = max(self.counts) / 1000 if total else None
        out["mean"] = (
            sum(key * count for key, count in self.counts.items()) / total / 1000 if total else None
        )
        return out


__all__ = ["PERCENTILES", "Histogram", "bucket"]
