"""Causal effect estimation on synthetic data with a known effect (`dowhy.datasets`): the ML
service's causal task (backdoor adjustment with DoWhy, plus refutations) versus the naive
unadjusted regression of outcome on treatment. Absolute error of the estimate and whether the
95% interval covers the truth. Prints one JSON line.

    nice -n 10 .venv/bin/python benchmarks/causal.py [--datasets 12]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings

import numpy as np
from scipy import stats


def naive(df, treatment: str, outcome: str) -> tuple[float, float, float]:
    """OLS of outcome on treatment alone: estimate and 95% interval."""
    x = df[treatment].astype(float).to_numpy()
    y = df[outcome].astype(float).to_numpy()
    res = stats.linregress(x, y)
    half = stats.t.ppf(0.975, len(x) - 2) * res.stderr
    return float(res.slope), float(res.slope - half), float(res.slope + half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import dowhy.datasets

    from nemo_server.ml.engines.causal import run_causal

    rows = []
    for k in range(args.datasets):
        np.random.seed(k)
        binary = k % 2 == 1
        beta = float(np.random.uniform(-10, 10))
        data = dowhy.datasets.linear_dataset(
            beta=beta,
            num_common_causes=3 + k % 3,
            num_samples=args.rows,
            treatment_is_binary=binary,
            stddev_treatment_noise=1.0,
            stddev_outcome_noise=1.0,
        )
        df = data["df"].astype(float)
        treatment, outcome = data["treatment_name"][0], data["outcome_name"]
        began = time.monotonic()
        result = run_causal(
            df,
            {
                "request": {
                    "treatment": treatment,
                    "outcome": outcome,
                    "confounders": data["common_causes_names"],
                    "method": "linear_regression",
                    "refutations": ["placebo_treatment", "random_common_cause", "data_subset"],
                    "refutation_simulations": 20,
                    "seed": k,
                }
            },
            lambda f, m: None,
        )
        took = time.monotonic() - began
        low, high = result["ci"]
        n_est, n_low, n_high = naive(df, treatment, outcome)
        row = {
            "dataset": k,
            "binary_treatment": binary,
            "true_effect": round(beta, 4),
            "service": {
                "estimate": result["effect"],
                "abs_error": abs(result["effect"] - beta),
                "covers": bool(low <= beta <= high),
                "robust": result["robust"],
                "seconds": round(took, 2),
            },
            "naive": {
                "estimate": n_est,
                "abs_error": abs(n_est - beta),
                "covers": bool(n_low <= beta <= n_high),
            },
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    def summary(key: str) -> dict[str, float]:
        return {
            "mean_abs_error": round(float(np.mean([r[key]["abs_error"] for r in rows])), 4),
            "coverage": round(float(np.mean([r[key]["covers"] for r in rows])), 3),
        }

    out = {
        "benchmark": "causal",
        "datasets": len(rows),
        "rows": args.rows,
        "service": summary("service")
        | {"refutations_passed": round(float(np.mean([r["service"]["robust"] for r in rows])), 3)},
        "naive": summary("naive"),
        "results": rows,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
