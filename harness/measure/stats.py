"""Derived latency figures from raw samples (a plain class, after pytest-benchmark's stats.py)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


def order_statistic_upper_bound(samples: np.ndarray, quantile: float, confidence: float) -> float | None:
    """A distribution-free upper confidence bound on a quantile, from order statistics.

    The k-th smallest of n samples exceeds the true q-quantile with probability
    P(Binomial(n, q) < k); the bound is the smallest such order statistic whose probability
    reaches `confidence`. None when n is too small for any sample to be a bound
    (n < log(1 - confidence) / log(q): 299 samples for p99 at 95 %).
    """
    ordered = np.sort(samples)
    n = len(ordered)
    k = int(stats.binom.ppf(confidence, n, quantile)) + 1  # smallest k with BinomCDF(k-1) >= confidence
    return float(ordered[k - 1]) if k <= n else None


@dataclass(frozen=True)
class LatencyStats:
    n: int
    mean_ms: float
    std_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    p99_ucb_ms: float | None  # upper 95 % confidence bound on p99; None when n < 299

    @classmethod
    def from_samples(cls, samples_ms: np.ndarray, confidence: float = 0.95) -> LatencyStats:
        samples = np.asarray(samples_ms, dtype=np.float64)
        if samples.size == 0:
            raise ValueError("no latency samples")
        p50, p90, p99 = np.percentile(samples, [50, 90, 99])
        return cls(n=int(samples.size), mean_ms=float(samples.mean()),
                   std_ms=float(samples.std(ddof=1)) if samples.size > 1 else 0.0,
                   p50_ms=float(p50), p90_ms=float(p90), p99_ms=float(p99), max_ms=float(samples.max()),
                   p99_ucb_ms=order_statistic_upper_bound(samples, 0.99, confidence))


@dataclass(frozen=True)
class InputSpread:
    """How much the time depends on the input: the median latency of the fastest and the slowest tenth of the
    inputs. Inputs are ranked on their even-numbered runs and read on their odd-numbered ones: ranked and read
    on the same runs, timing noise alone would make the fastest tenth look fast and the slowest look slow."""

    inputs: int  # distinct inputs timed
    fastest_decile_p50_ms: float | None  # None with fewer than 10 inputs timed at least twice
    slowest_decile_p50_ms: float | None

    @classmethod
    def from_samples(cls, samples_ms: np.ndarray, input_index: np.ndarray) -> InputSpread:
        samples, inputs = np.asarray(samples_ms, dtype=np.float64), np.asarray(input_index)
        occurrence = _occurrence(inputs)
        distinct = np.unique(inputs)
        ranked = [i for i in distinct if np.any((inputs == i) & (occurrence % 2 == 1))]
        if len(ranked) < 10:
            return cls(len(distinct), None, None)
        rank_by = np.array([np.median(samples[(inputs == i) & (occurrence % 2 == 0)]) for i in ranked])
        tenth = max(1, len(ranked) // 10)
        order = np.asarray(ranked)[np.argsort(rank_by, kind="stable")]
        read = occurrence % 2 == 1

        def p50_of(group: np.ndarray) -> float:
            return float(np.median(samples[read & np.isin(inputs, group)]))
        return cls(len(distinct), p50_of(order[:tenth]), p50_of(order[-tenth:]))


def _occurrence(inputs: np.ndarray) -> np.ndarray:
    """For each sample, how many earlier samples ran the same input (0 for its first run)."""
    seen: dict[int, int] = {}
    occurrence = np.empty(len(inputs), dtype=np.int64)
    for position, value in enumerate(inputs.tolist()):
        occurrence[position] = seen.get(value, 0)
        seen[value] = occurrence[position] + 1
    return occurrence
