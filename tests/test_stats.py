import numpy as np
import pytest

from harness.measure.stats import LatencyStats, order_statistic_upper_bound


@pytest.mark.qualification(kind="known answer")
def test_percentiles_match_hand_computed_values():
    stats = LatencyStats.from_samples(np.arange(1, 101, dtype=float))  # 1..100 ms
    # numpy's default (linear) interpolation: position q*(n-1) in the sorted samples
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p90_ms == pytest.approx(90.1)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.max_ms == 100
    assert stats.mean_ms == pytest.approx(50.5)
    assert stats.std_ms == pytest.approx(29.011491975882016)  # sample std (ddof=1) of 1..100
    assert stats.p99_ucb_ms is None  # 100 samples cannot bound p99 at 95 %


def test_p99_bound_needs_299_samples_and_is_then_the_maximum():
    # P(max of n < true p99) = 0.99^n: 0.99^298 = 0.0501 > 5 %, 0.99^299 = 0.0495 <= 5 %
    assert order_statistic_upper_bound(np.arange(298.0), 0.99, 0.95) is None
    assert order_statistic_upper_bound(np.arange(1.0, 300.0), 0.99, 0.95) == 299.0


def test_p99_bound_for_1000_samples_is_the_996th():
    # Binomial(1000, 0.99): P(X <= 994) = 0.934 < 0.95 <= P(X <= 995) = 0.971, so k - 1 = 995
    samples = np.random.default_rng(1).permutation(np.arange(1.0, 1001.0))
    assert order_statistic_upper_bound(samples, 0.99, 0.95) == 996.0


@pytest.mark.qualification(kind="known answer")
def test_bound_is_conservative_on_a_known_distribution():
    """Coverage check: over many exponential samples, the bound falls below the true p99 < ~5 % of the time."""
    rng = np.random.default_rng(7)
    true_p99 = -np.log(0.01)
    misses = sum(order_statistic_upper_bound(rng.exponential(size=400), 0.99, 0.95) < true_p99 for _ in range(400))
    assert misses / 400 <= 0.08


def test_empty_samples_are_refused():
    with pytest.raises(ValueError, match="no latency samples"):
        LatencyStats.from_samples(np.array([]))
