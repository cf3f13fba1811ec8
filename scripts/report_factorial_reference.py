"""Reference values for reports/stats/factorial_test.ts, computed once with NumPy and SciPy.

Run: python3 scripts/report_factorial_reference.py. The numbers it prints are pasted into the
test; the test never runs Python. No statsmodels here: type II sums of squares come from model
comparison with numpy.linalg.lstsq (rank from numpy.linalg.matrix_rank), the way
statsmodels' anova_lm(typ=2) and R's car::Anova(type=2) define them; p from scipy.stats.f.sf.
"""
import itertools

import numpy as np
from scipy import stats

# An unbalanced, partly crossed design: frozen has no rank ("n/a"), one lora cell lost a seed,
# dora ran at rank 4 only with nf4.
ROWS = [
    ("frozen", "n/a", "none", 41.0), ("frozen", "n/a", "none", 43.5), ("frozen", "n/a", "none", 40.2),
    ("frozen", "n/a", "nf4", 39.8), ("frozen", "n/a", "nf4", 41.1), ("frozen", "n/a", "nf4", 38.7),
    ("lora", "4", "none", 55.2), ("lora", "4", "none", 57.9), ("lora", "4", "none", 54.4),
    ("lora", "4", "nf4", 53.0), ("lora", "4", "nf4", 55.6),
    ("lora", "16", "none", 58.1), ("lora", "16", "none", 60.3), ("lora", "16", "none", 56.9),
    ("lora", "16", "nf4", 57.7), ("lora", "16", "nf4", 54.2), ("lora", "16", "nf4", 56.5),
    ("dora", "4", "none", 56.0), ("dora", "4", "none", 59.1), ("dora", "4", "none", 57.3),
    ("dora", "4", "nf4", 52.8), ("dora", "4", "nf4", 55.9), ("dora", "4", "nf4", 54.0),
    ("dora", "16", "none", 61.2), ("dora", "16", "none", 58.4),
]
FACTORS = ["method", "rank", "quant"]


def levels(col):
    seen = []
    for v in col:
        if v not in seen:
            seen.append(v)
    return seen


def term_cols(data, term):
    cols = [np.ones(len(data))]
    for f in term:
        j = FACTORS.index(f)
        col = [r[j] for r in data]
        cols = [base * (np.array(col) == lv) for base in cols for lv in levels(col)[1:]]
    return cols


def fit(data, y, terms):
    x = np.column_stack([np.ones(len(data))] + [c for t in terms for c in term_cols(data, t)])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    r = y - x @ beta
    return float(r @ r), int(np.linalg.matrix_rank(x)), r


def type2(data, y):
    terms = [[f] for f in FACTORS] + [list(p) for p in itertools.combinations(FACTORS, 2)]
    rss, rank, resid = fit(data, y, terms)
    dfe = len(y) - rank
    out = []
    for t in terms:
        base = [u for u in terms if u != t and not set(t) <= set(u)]
        r0, k0, _ = fit(data, y, base)
        r1, k1, _ = fit(data, y, base + [t])
        df = k1 - k0
        ss = r0 - r1
        f = (ss / df) / (rss / dfe) if df else float("nan")
        p = stats.f.sf(f, df, dfe) if df else float("nan")
        out.append((" x ".join(t), ss, df, f, p, ss / (ss + rss) if df else float("nan")))
    return out, rss, dfe, resid


def art(data, y):
    """Aligned rank transform (Wobbrock et al. 2011): align, rank, same type II model."""
    cells = {}
    for i, r in enumerate(data):
        cells.setdefault(r[:3], []).append(y[i])
    grand = y.mean()

    def marg(idx):
        acc = {}
        for i, r in enumerate(data):
            acc.setdefault(tuple(r[j] for j in idx), []).append(y[i])
        return lambda r: np.mean(acc[tuple(r[j] for j in idx)])

    terms = [[f] for f in FACTORS] + [list(p) for p in itertools.combinations(FACTORS, 2)]
    rows = []
    for k, t in enumerate(terms):
        idx = [FACTORS.index(f) for f in t]
        if len(t) == 1:
            est = [marg(idx)(r) - grand for r in data]
        else:
            ma, mb, mab = marg(idx[:1]), marg(idx[1:]), marg(idx)
            est = [mab(r) - ma(r) - mb(r) + grand for r in data]
        aligned = np.array([y[i] - np.mean(cells[r[:3]]) + est[i] for i, r in enumerate(data)])
        ranks = stats.rankdata(aligned)
        res, _, _, _ = type2(data, ranks)
        rows.append(res[k])
    return rows


data = [r[:3] for r in ROWS]
y = np.array([r[3] for r in ROWS])
res, rss, dfe, resid = type2(data, y)
print("error", repr(rss), dfe)
for name, ss, df, f, p, pe in res:
    print("II", name, repr(ss), df, repr(f), repr(p), repr(pe))
for name, ss, df, f, p, pe in art(data, y):
    print("ART", name, repr(ss), df, repr(f), repr(p))
# Normality of a fixed skewed sample and of a near-normal one (scipy.stats.normaltest).
skewed = [0.1, 0.2, 0.2, 0.3, 0.3, 0.4, 0.5, 0.5, 0.6, 0.7, 0.8, 1.0, 1.1, 1.3, 1.6, 2.0, 2.6, 3.5, 4.9, 7.2, 9.8]
print("normaltest skewed", *map(repr, stats.skewtest(skewed)), *map(repr, stats.kurtosistest(skewed)),
      *map(repr, stats.normaltest(skewed)))
print("normaltest resid", *map(repr, stats.normaltest(resid)))
