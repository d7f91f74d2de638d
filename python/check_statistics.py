"""Independent reference for lab's comparison statistics (numpy + scipy).

    python3 python/check_statistics.py      # rewrites Tests/AnalysisTests/Fixtures/statistics_reference.json

For seeded random arms of runs x images (0/1 correctness) it computes, with
numpy arrays and scipy.stats.t rather than lab's own code:
  - delta, the run and image variance terms, the standard error, the
    Welch-Satterthwaite df, the 95% t interval, the two-sided p and the
    smallest difference detectable with 80% power;
  - P(A > B) over run pairs and its 95% percentile interval under the
    bootstrap over runs within each arm, by exact enumeration of resamples
    (lab enumerates too up to 200,000 pairs of resamples and draws 4,000
    beyond, so the 7 vs 7 case holds lab's draws to the exact interval);
and a table of Student t CDF values and quantiles, and the runs per arm a
1-point difference needs at a few run spreads. AnalysisTests. StatisticsReferenceTests
hold lab's numbers to these.
"""

import itertools
import json
import math
import os

import numpy as np
from scipy import stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "AnalysisTests", "Fixtures", "statistics_reference.json")
ALPHA, POWER = 0.05, 0.8


def arms(rng, n_a, n_b, n_images, effect, seed_sd, interaction_sd):
    """Runs x images correctness from a logistic model with seed, image and
    image-by-arm effects, so every variance term is exercised."""
    difficulty = rng.normal(0.8, 1.2, n_images)
    w = rng.normal(0, interaction_sd, n_images)

    def arm(n, shift, w_arm):
        u = rng.normal(0, seed_sd, (n, 1))
        logit = difficulty[None, :] + u + shift + w_arm[None, :]
        return (rng.random((n, n_images)) < 1 / (1 + np.exp(-logit))).astype(int)

    return arm(n_a, effect, w), arm(n_b, 0.0, -w)


def residual_variance(y):
    r = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
    return (r ** 2).sum() / ((y.shape[0] - 1) * (y.shape[1] - 1))


def resamples(n):
    """Every bootstrap resample of n runs as a count vector, with its probability."""
    out = []
    for combo in itertools.combinations_with_replacement(range(n), n):
        c = np.bincount(combo, minlength=n)
        out.append((c, math.factorial(n) / np.prod([math.factorial(k) for k in c]) / n ** n))
    return out


def weighted_quantile(values, weights, q):
    order = np.argsort(values, kind="stable")
    v, cw = values[order], np.cumsum(weights[order])
    return float(v[np.argmax(cw >= q - 1e-12)])


def compare(a, b):
    acc_a, acc_b = a.mean(axis=1), b.mean(axis=1)
    n_a, n_b, n_i = a.shape[0], b.shape[0], a.shape[1]
    term_a = acc_a.var(ddof=1) / n_a
    term_b = acc_b.var(ddof=1) / n_b
    d = a.mean(axis=0) - b.mean(axis=0)
    interaction = max(0.0, d.var(ddof=1) - residual_variance(a) / n_a - residual_variance(b) / n_b)
    term_i = interaction / n_i
    se = math.sqrt(term_a + term_b + term_i)
    df = se ** 4 / (term_a ** 2 / (n_a - 1) + term_b ** 2 / (n_b - 1) + term_i ** 2 / (n_i - 1))
    delta = acc_a.mean() - acc_b.mean()
    q = stats.t.ppf(1 - ALPHA / 2, df)
    g = (acc_a[:, None] > acc_b[None, :]) + 0.5 * (acc_a[:, None] == acc_b[None, :])
    ra, rb = resamples(n_a), resamples(n_b)
    ca = np.array([c for c, _ in ra]); wa = np.array([w for _, w in ra])
    cb = np.array([c for c, _ in rb]); wb = np.array([w for _, w in rb])
    p_all = (ca @ g @ cb.T) / (n_a * n_b)
    w_all = np.outer(wa, wb)
    return {
        "delta": delta, "run_variance": term_a + term_b, "image_variance": term_i,
        "standard_error": se, "df": df, "ci_low": delta - q * se, "ci_high": delta + q * se,
        "p": float(2 * stats.t.sf(abs(delta / se), df)),
        "min_detectable": (q + stats.t.ppf(POWER, df)) * se,
        "p_improve": float(g.mean()),
        "p_improve_low": weighted_quantile(p_all.ravel(), w_all.ravel(), 0.025),
        "p_improve_high": weighted_quantile(p_all.ravel(), w_all.ravel(), 0.975),
    }


def runs_needed(difference, sd):
    for n in range(2, 1001):
        df = 2 * n - 2
        if (stats.t.ppf(1 - ALPHA / 2, df) + stats.t.ppf(POWER, df)) * sd * math.sqrt(2 / n) <= difference:
            return n
    return None


def main():
    rng = np.random.default_rng(20261206)
    cases = []
    for n_a, n_b, n_i, effect, seed_sd, inter in [(3, 3, 60, 0.0, 0.3, 0.0), (3, 3, 200, 0.4, 0.1, 0.8),
                                                 (3, 5, 120, 0.2, 0.4, 0.3), (2, 2, 40, 0.0, 0.2, 0.5),
                                                 (4, 3, 90, -0.3, 0.05, 1.0), (5, 5, 150, 0.1, 0.25, 0.2),
                                                 (6, 4, 70, 0.5, 0.6, 0.0), (7, 7, 50, 0.2, 0.3, 0.2)]:
        a, b = arms(rng, n_a, n_b, n_i, effect, seed_sd, inter)
        cases.append({"a": a.tolist(), "b": b.tolist(), "expected": compare(a, b)})
    t_table = [{"t": t, "df": df, "cdf": float(stats.t.cdf(t, df))}
               for t in [-3.1, -0.4, 0.0, 0.7, 2.2, 6.5] for df in [1.0, 1.7, 2.0, 3.4, 12.0, 250.0]]
    q_table = [{"p": p, "df": df, "quantile": float(stats.t.ppf(p, df))}
               for p in [0.025, 0.2, 0.8, 0.975, 0.999] for df in [1.0, 1.7, 2.0, 3.4, 12.0, 250.0]]
    needed = [{"difference": 0.01, "sd": sd, "runs": runs_needed(0.01, sd)} for sd in [0.002, 0.005, 0.01, 0.02, 0.05]]
    doc = {"generator": f"python/check_statistics.py, numpy {np.__version__}, scipy {__import__('scipy').__version__}",
           "cases": cases, "t_cdf": t_table, "t_quantile": q_table, "runs_needed": needed}
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} comparisons, {len(t_table)} t CDF values, {len(q_table)} quantiles")


if __name__ == "__main__":
    main()
