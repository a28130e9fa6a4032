"""Symbolic regression: engines behind a Protocol, and the Pareto front they feed.

`nemo` is the project's own search (`nemo.py`); `gplearn` is the genetic-programming baseline.
Every engine proposes sympy expressions; here they are simplified, scored on all rows
(NRMSE: RMSE over the target's standard deviation) and reduced to the complexity/error front.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from nemo_server.ml.engines.symbolic.base import Candidate, ProgressFn, SymbolicEngine
from nemo_server.ml.jobs import TaskError

if TYPE_CHECKING:
    import pandas as pd


def _nemo() -> SymbolicEngine:
    from nemo_server.ml.engines.symbolic.nemo import NemoEngine

    return NemoEngine()


def _gplearn() -> SymbolicEngine:
    from nemo_server.ml.engines.symbolic.gplearn_engine import GplearnEngine

    return GplearnEngine()


ENGINES: dict[str, Callable[[], SymbolicEngine]] = {"nemo": _nemo, "gplearn": _gplearn}

__all__ = ["ENGINES", "Candidate", "SymbolicEngine", "pareto", "run_symbolic", "solve"]


class _Timeout(Exception):
    pass


def _simplify(expr: Any, seconds: int = 2) -> Any:
    """sympy.simplify, given up after `seconds` (it can take very long on odd expressions)."""
    import sympy

    if sympy.count_ops(expr) > 40:
        return expr
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        return sympy.simplify(expr)

    def _raise(*_: object) -> None:
        raise _Timeout

    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        return sympy.simplify(expr)
    except (_Timeout, Exception):
        return expr
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _round_floats(expr: Any) -> Any:
    import sympy

    floats = {f: sympy.Float(float(f"{float(f):.6g}"), 6) for f in expr.atoms(sympy.Float)}
    return expr.xreplace(floats) if floats else expr


def complexity(expr: Any) -> int:
    """Nodes in the expression tree, where the numeric factors (or terms) of a product (or
    sum) form one constant: 1 when exact (1/(2*pi)), 2 when fitted (a float). An exact
    constant thus beats a float that fits the noise a little better."""
    import sympy

    if expr.is_number:
        return 2 if expr.atoms(sympy.Float) else 1
    if not expr.args:
        return 1
    numeric = [a for a in expr.args if a.is_number]
    rest = [a for a in expr.args if not a.is_number]
    if numeric and isinstance(expr, sympy.Mul | sympy.Add):
        const = 2 if any(a.atoms(sympy.Float) for a in numeric) else 1
        return 1 + const + sum(complexity(a) for a in rest)
    return 1 + sum(complexity(a) for a in expr.args)


def _error(expr: Any, X: np.ndarray, y: np.ndarray, names: list[str]) -> float:
    import sympy

    symbols = [sympy.Symbol(n) for n in names]
    try:
        fn = sympy.lambdify(symbols, expr, "numpy")
        with np.errstate(all="ignore"):
            pred = np.asarray(fn(*[X[:, i] for i in range(X.shape[1])]), dtype=complex)
    except Exception:  # sympy's printers and numpy fail in many ways on odd expressions
        return float("inf")
    pred = np.broadcast_to(pred, y.shape)
    if not np.all(np.isfinite(pred)) or np.max(np.abs(pred.imag)) > 1e-9:
        return float("inf")
    scale = float(np.std(y)) or float(np.mean(np.abs(y))) or 1.0
    return float(np.sqrt(np.mean((pred.real - y) ** 2)) / scale)


def pareto(
    candidates: list[Candidate], X: np.ndarray, y: np.ndarray, names: list[str]
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(best, front): the complexity/error front, each formula simplified, with LaTeX."""
    import sympy

    positive = {
        sympy.Symbol(n): sympy.Symbol(n, positive=True)
        for i, n in enumerate(names)
        if np.all(X[:, i] > 0)
    }
    back = {v: k for k, v in positive.items()}
    # Score the raw expressions first; only the front is simplified (sympy can be slow).
    raw: list[tuple[int, float, Any, str]] = []
    for cand in candidates:
        try:
            expr = _round_floats(cand.expr)
            err = _error(expr, X, y, names)
            if np.isfinite(err):
                raw.append((complexity(expr), err, expr, cand.source))
        except Exception:  # one odd candidate must not sink the run
            continue
    rows: dict[str, dict[str, Any]] = {}
    for _, raw_err, raw_expr, source in _front(raw, key=lambda r: (r[0], r[1]))[:20]:
        try:
            # Columns positive everywhere simplify as positive symbols (sqrt(m**2) -> m).
            expr = _round_floats(_simplify(raw_expr.xreplace(positive)).xreplace(back))
            err = _error(expr, X, y, names)
            if not np.isfinite(err) or err > raw_err * 1.01 + 1e-12:
                expr, err = raw_expr, raw_err
            text = str(expr)
            if text not in rows:
                rows[text] = {
                    "formula": text,
                    "latex": sympy.latex(expr),
                    "complexity": complexity(expr),
                    "error": err,
                    "source": source,
                }
        except Exception:
            continue
    front = _front(list(rows.values()), key=lambda r: (r["complexity"], r["error"]))
    if not front:
        return None, []
    # Model selection: a BIC-like score where each node of the tree costs about as much as
    # the best of thousands of spurious terms could gain by chance.
    n = len(y)
    best = min(
        front,
        key=lambda r: n * np.log(max(r["error"], 1e-15) ** 2) + PENALTY_PER_NODE * r["complexity"],
    )
    return best, front


PENALTY_PER_NODE = 6.0


def _front(rows: list[Any], key: Callable[[Any], tuple[int, float]]) -> list[Any]:
    """Rows that no simpler-or-equal row beats on error, ordered by complexity."""
    front: list[Any] = []
    for row in sorted(rows, key=key):
        if not front or key(row)[1] < key(front[-1])[1] * (1 - 1e-9):
            front.append(row)
    return front


def solve(
    engine: str,
    X: np.ndarray,
    y: np.ndarray,
    names: list[str],
    time_budget_s: float,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Run one engine and build its front (used by jobs and by the benchmark)."""
    progress = progress or (lambda f, m: None)
    import sympy

    candidates = ENGINES[engine]().fit(X, y, names, time_budget_s, seed, progress)
    # The mean is the simplest model of all: it anchors the front (and is the answer when y
    # is constant).
    candidates.append(Candidate(sympy.Float(float(np.mean(y))), "constant"))
    progress(0.9, "simplifying")
    best, front = pareto(candidates, X, y, names)
    return {"engine": engine, "best": best, "pareto": front, "candidates": len(candidates)}


def run_symbolic(
    frame: pd.DataFrame, payload: dict[str, Any], progress: ProgressFn
) -> dict[str, Any]:
    """Worker task: symbolic regression of `target` over `features`."""
    import pandas as pd

    req = payload["request"]
    features, target = list(req["features"]), req["target"]
    data = frame[[*features, target]].apply(pd.to_numeric, errors="coerce").dropna()
    if len(data) < 5:
        raise TaskError("fewer than 5 rows have numbers in every column used")
    if len(data) > req.get("max_rows", 2000):
        data = data.sample(int(req["max_rows"]), random_state=int(req.get("seed") or 0))
    X = data[features].to_numpy(float)
    y = data[target].to_numpy(float)
    result = solve(
        req["engine"],
        X,
        y,
        features,
        float(req["time_budget_s"]),
        int(req.get("seed") or 0),
        progress,
    )
    if result["best"] is None:
        raise TaskError("no formula could be evaluated on this data")
    return {
        **result,
        "target": target,
        "features": features,
        "n_rows": len(data),
        "error_metric": "nrmse",
    }
