"""Reference values for reports/stats/paired_test.ts, computed once with SciPy (1.17.1).

Run: python3 scripts/report_stats_reference.py. The numbers it prints are pasted into the test;
the test never runs Python.
"""
import numpy as np
from scipy import stats

cases = {
    "a": ([0.8, 1.9, -0.4, 2.6, 1.1, 0.3, 1.7, 0.9], 1.0),
    "b": ([-5.0, 4.0, 2.5, -3.0, 1.5, -1.0], 1.0),
    "c": ([0.10, -0.20, 0.05, 0.15, -0.05, 0.00, 0.10, -0.10, 0.05, 0.02], 0.5),
}
for name, (d, m) in cases.items():
    d = np.array(d)
    t = stats.ttest_1samp(d, 0.0)
    lo = stats.ttest_1samp(d, -m, alternative="greater").pvalue
    hi = stats.ttest_1samp(d, m, alternative="less").pvalue
    ci95 = t.confidence_interval(0.95)
    ci90 = t.confidence_interval(0.90)
    print(name, repr(t.statistic), repr(t.pvalue), repr(lo), repr(hi), repr(max(lo, hi)),
          repr(ci95.low), repr(ci95.high), repr(ci90.low), repr(ci90.high))
print("t quantiles", repr(stats.t.ppf(0.975, 4)), repr(stats.t.ppf(0.995, 11)), repr(stats.t.ppf(0.05, 2)))
print("t cdf", repr(stats.t.cdf(1.3, 3)), repr(stats.t.cdf(-2.7, 7)))
