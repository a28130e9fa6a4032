"""The `nemo` engine: a sparse, linear-in-constants search over a physics-style term library.

For several transforms of the target (y, 1/y, y^2, 1/y^2, sqrt(y), log(y)) it finds the few
library terms (monomials, unary functions of monomials and differences, their products) whose
least-squares combination explains the transformed target, with a beam search that scores every
next term in one matrix product. In log space it also fits power laws over all variables (the
dimensional-analysis shape of most physics laws) plus extra terms. Constants are fitted by least
squares, then snapped to simple closed forms (1/2, 4*pi, ...) when the fit allows. What no
structure explains is handed to genetic programming (gplearn) for the remaining time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from nemo_server.ml.engines.symbolic import constants, library
from nemo_server.ml.engines.symbolic.base import Candidate, ProgressFn
from nemo_server.ml.engines.symbolic.kernels import (
    best_pairs,
    best_triples,
    common_factor,
    extend,
    normalize,
    nrmse_of,
    refit,
)


@dataclass(frozen=True)
class Transform:
    """g(y / M): a transform of the target, after dividing by a monomial factor M if any."""

    name: str
    factor: library.Spec | None = None

    def forward(self, y: np.ndarray, X: np.ndarray) -> np.ndarray | None:
        """g(y / M) per row, NaN where undefined (noise can push a few values out of the
        domain of log or sqrt); None when too few rows are left."""
        if self.factor is not None:
            y = y / library.values(self.factor, X)
        with np.errstate(all="ignore"):
            if self.name == "y":
                return y
            positive = np.mean(y > 0) >= 0.5
            valid = {
                "1/y": y != 0,
                "y^2": (y > 0) if positive else (y < 0),
                "1/y^2": (y > 0) if positive else (y < 0),
                "sqrt(y)": y > 0,
                "log(y)": y > 0,
                "sin(y)": np.abs(y) <= np.pi / 2,
            }[self.name]
            if np.mean(valid) < 0.6:
                return None
            out = {
                "1/y": lambda: 1 / y,
                "y^2": lambda: y**2,
                "1/y^2": lambda: 1 / y**2,
                "sqrt(y)": lambda: np.sqrt(y),
                "log(y)": lambda: np.log(y),
                "sin(y)": lambda: np.sin(y),
            }[self.name]()
            return np.where(valid & np.isfinite(out), out, np.nan)

    def weights(self, y: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Row weights 1/|d g(y/M)/dy|: least squares on g then approximates least squares
        on y (the delta method), so noisy small values do not dominate a log or 1/y fit."""
        scale = library.values(self.factor, X) if self.factor is not None else 1.0
        u = y / scale
        with np.errstate(all="ignore"):
            slope = {
                "y": lambda: np.ones_like(u),
                "1/y": lambda: 1 / u**2,
                "y^2": lambda: 2 * np.abs(u),
                "1/y^2": lambda: 2 / np.abs(u) ** 3,
                "sqrt(y)": lambda: 0.5 / np.sqrt(u),
                "log(y)": lambda: 1 / np.abs(u),
                "sin(y)": lambda: np.abs(np.cos(u)),
            }[self.name]() / np.abs(scale)
            w = 1 / np.maximum(slope, 1e-300)
        w = np.where(np.isfinite(w), w, 0.0)
        return w / (np.mean(w) or 1.0)

    def inverse(self, s: np.ndarray, sign: float, X: np.ndarray) -> np.ndarray:
        scale = library.values(self.factor, X) if self.factor is not None else 1.0
        with np.errstate(all="ignore"):
            return (
                scale
                * {
                    "y": lambda: s,
                    "1/y": lambda: 1 / s,
                    "y^2": lambda: sign * np.sqrt(s),
                    "1/y^2": lambda: sign / np.sqrt(s),
                    "sqrt(y)": lambda: s**2,
                    "log(y)": lambda: np.exp(s),
                    "sin(y)": lambda: np.arcsin(s),
                }[self.name]()
            )

    def inverse_expr(self, s: Any, sign: int, symbols: list[Any]) -> Any:
        import sympy

        scale = library.expr(self.factor, symbols) if self.factor is not None else 1
        return (
            scale
            * {
                "y": lambda: s,
                "1/y": lambda: 1 / s,
                "y^2": lambda: sign * sympy.sqrt(s),
                "1/y^2": lambda: sign / sympy.sqrt(s),
                "sqrt(y)": lambda: s**2,
                "log(y)": lambda: sympy.exp(s),
                "sin(y)": lambda: sympy.asin(s),
            }[self.name]()
        )


TRANSFORMS = [Transform(n) for n in ("y", "log(y)", "1/y", "y^2", "1/y^2", "sqrt(y)", "sin(y)")]


@dataclass
class Structure:
    transform: Transform
    base: tuple[library.Spec, ...]
    terms: tuple[library.Spec, ...]
    sse: float
    nrmse: float = field(default=float("inf"))


class NemoEngine:
    """The project's own search (see the module docstring)."""

    name = "nemo"

    def __init__(
        self,
        max_terms: int = 30000,
        search_rows: int = 300,
        depth: int = 3,
        beam: int = 12,
        gp_fallback: bool = True,
    ) -> None:
        self.max_terms, self.search_rows = max_terms, search_rows
        self.depth, self.beam, self.gp_fallback = depth, beam, gp_fallback

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        names: list[str],
        time_budget_s: float,
        seed: int,
        progress: ProgressFn,
    ) -> list[Candidate]:
        from threadpoolctl import threadpool_limits

        # One BLAS thread: jobs run beside the API on shared cores.
        with threadpool_limits(1):
            return self._fit(X, y, names, time_budget_s, seed, progress)

    def _fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        names: list[str],
        time_budget_s: float,
        seed: int,
        progress: ProgressFn,
    ) -> list[Candidate]:
        start = time.monotonic()
        deadline = start + time_budget_s * 0.85
        rng = np.random.default_rng(seed)
        rows = rng.choice(len(y), size=min(len(y), self.search_rows), replace=False)
        Xs, ys = X[rows], y[rows]
        specs, pool = library.build(X.shape[1], self.max_terms)
        cache: dict[library.Spec, np.ndarray] = {}
        raw = np.column_stack([library.values(s, Xs, cache) for s in specs])
        A, ok = normalize(raw)
        # float32 halves the memory traffic of the scans; final fits are redone in float64.
        A = np.ascontiguousarray(A[:, ok], dtype=np.float32)
        raw = np.ascontiguousarray(raw[:, ok], dtype=np.float32)
        specs = [s for s, keep in zip(specs, ok, strict=True) if keep]
        pool = int(ok[:pool].sum())
        found: list[Structure] = []
        sign = 1.0 if np.median(y) >= 0 else -1.0
        logs = tuple(("log", i) for i in range(X.shape[1]))
        plans: list[tuple[Transform, tuple]] = []
        for tr in TRANSFORMS:
            plans.append((tr, ()))
            if tr.name == "log(y)" and np.all(X > 0):
                plans.insert(1, (tr, logs))
        factor = common_factor(Xs, ys)
        if factor is not None:
            plans[2:2] = [(Transform("y", factor), ()), (Transform("1/y", factor), ())]
        exact = False
        for quick in (True, False):
            for k, (tr, base) in enumerate(plans):
                # The quick pass over the first two plans (y, and the power law in log space)
                # always runs, so a slow machine or a tiny budget still gives answers.
                forced = quick and k < 2
                plan_deadline = max(deadline, time.monotonic() + 1.0) if forced else deadline
                if time.monotonic() > plan_deadline:
                    break
                t = tr.forward(ys, Xs)
                if t is None or np.nanstd(t) == 0:
                    continue
                if tr.name == "y" and tr.factor is None:
                    structures = self._beam(tr, base, t, Xs, A, specs, pool, plan_deadline, quick)
                else:
                    # Weighted least squares (delta method) on the rows where g is defined.
                    w = tr.weights(ys, Xs)
                    rows_ok = np.isfinite(t) & (w > 0)
                    if rows_ok.sum() < 10:
                        continue
                    Aw = raw[rows_ok] * w[rows_ok, None].astype(np.float32)
                    norms = np.linalg.norm(Aw, axis=0)
                    Aw /= np.where(norms > 0, norms, 1).astype(np.float32)
                    structures = self._beam(
                        tr,
                        base,
                        t[rows_ok],
                        Xs[rows_ok],
                        Aw,
                        specs,
                        pool,
                        plan_deadline,
                        quick,
                        weights=w[rows_ok],
                    )
                found += structures
                done = (k + 1) / len(plans)
                progress(0.1 + (0.2 if quick else 0.5) * done, f"searched {tr.name}")
                if any(self._score(s, X, y, sign) < 1e-9 for s in structures[:12]):
                    exact = True  # other transforms can only add equivalent forms
                    break
            if exact:
                break
        unique: dict[tuple, Structure] = {}
        for s in found:
            unique.setdefault((s.transform, s.base, s.terms), s)
        found = list(unique.values())
        for s in found:
            s.nrmse = self._score(s, X, y, sign)
        found.sort(key=lambda s: s.nrmse)
        out: list[Candidate] = []
        for s in self._diverse(found):
            expr = self._snap(s, X, y, names, sign)
            if expr is not None:
                out.append(Candidate(expr, f"nemo:{s.transform.name}"))
        progress(0.75, "constants snapped")
        best = found[0].nrmse if found else float("inf")
        remaining = start + time_budget_s - time.monotonic() - 1.5
        if self.gp_fallback and best > 0.02 and remaining > 2:
            from nemo_server.ml.engines.symbolic.gplearn_engine import GplearnEngine

            out += GplearnEngine().fit(X, y, names, remaining, seed, lambda f, m: None)
        return out

    def _beam(
        self,
        tr: Transform,
        base: tuple,
        t: np.ndarray,
        Xs: np.ndarray,
        A: np.ndarray,
        specs: list[library.Spec],
        pool: int,
        deadline: float,
        quick: bool = False,
        weights: np.ndarray | None = None,
    ) -> list[Structure]:
        """Structures for one transform. `quick`: only what the pool allows in closed form
        (singles, all pairs, triples); otherwise also extend the best ones term by term."""
        B = None
        if weights is None:
            tc = t - t.mean()
            if base:
                B, okb = normalize(np.column_stack([library.values(b, Xs) for b in base]))
                B = B[:, okb]
        else:  # weighted rows: the intercept is the weight column, nothing is centred
            tc = t * weights
            cols = [weights] + [library.values(b, Xs) * weights for b in base]
            B = np.column_stack(cols)
            B = B / np.where((n := np.linalg.norm(B, axis=0)) > 0, n, 1)
        total = float(tc @ tc)
        out: list[Structure] = []
        if B is not None:
            Q = np.linalg.qr(B)[0]
            e = tc - Q @ (Q.T @ tc)
            out.append(Structure(tr, base, (), float(e @ e)))

        def keep(scored: dict[tuple[int, ...], float], n: int) -> list[tuple[tuple, float]]:
            best = sorted(scored.items(), key=lambda kv: kv[1])[:n]
            out.extend(Structure(tr, base, tuple(specs[i] for i in k), v) for k, v in best[:8])
            return best

        beam = keep(extend(B, (), tc, A, 30), self.beam)
        if quick:
            pairs = keep(best_pairs(B, tc, A[:, :pool], 40), self.beam)
            if pairs and pairs[0][1] > 1e-9 * total:
                keep(best_triples(B, tc, A[:, :pool], pairs, 40), self.beam)
            return out
        if self.depth >= 2 and time.monotonic() < deadline:
            scored = best_pairs(B, tc, A[:, :pool], 40)
            for idx, _ in beam:
                for key, v in extend(B, idx, tc, A, 8).items():
                    scored[key] = min(scored.get(key, np.inf), v)
            beam = keep(scored, self.beam)
        for level in range(2, self.depth):
            if time.monotonic() > deadline or not beam or beam[0][1] <= 1e-9 * total:
                break  # out of time, or exact already (more terms would only overfit)
            scored = best_triples(B, tc, A[:, :pool], beam, 40) if level == 2 else {}
            for idx, _ in beam:
                for key, v in extend(B, idx, tc, A, 8).items():
                    scored[key] = min(scored.get(key, np.inf), v)
            beam = keep(scored, self.beam)
        return out

    @staticmethod
    def _design(s: Structure, X: np.ndarray) -> np.ndarray:
        cols = [np.ones(len(X))] + [library.values(b, X) for b in (*s.base, *s.terms)]
        return np.column_stack(cols)

    def _score(self, s: Structure, X: np.ndarray, y: np.ndarray, sign: float) -> float:
        t = s.transform.forward(y, X)
        D = self._design(s, X)
        if t is None or not np.all(np.isfinite(D)):
            return float("inf")
        w = s.transform.weights(y, X)
        rows = np.isfinite(t) & np.isfinite(w)
        coef = np.linalg.lstsq(D[rows] * w[rows, None], t[rows] * w[rows], rcond=None)[0]
        return nrmse_of(s.transform.inverse(D @ coef, sign, X), y)

    @staticmethod
    def _diverse(found: list[Structure], per_kind: int = 4, total: int = 80) -> list[Structure]:
        """The best structures of each (transform, size): at the noise level many forms fit
        equally well, and the simplest closed form must not be crowded out."""
        counts: dict[tuple, int] = {}
        out = []
        for s in found:
            if not np.isfinite(s.nrmse):
                continue
            kind = (s.transform, len(s.terms) + (1 if s.base else 0))
            if counts.get(kind, 0) < per_kind:
                counts[kind] = counts.get(kind, 0) + 1
                out.append(s)
            if len(out) >= total:
                break
        return out

    def _snap(
        self, s: Structure, X: np.ndarray, y: np.ndarray, names: list[str], sign: float
    ) -> Any:
        import sympy

        w = s.transform.weights(y, X)
        t = s.transform.forward(y, X)
        rows = np.isfinite(t) & np.isfinite(w)
        D = self._design(s, X)[rows] * w[rows, None]
        t = t[rows] * w[rows]
        coef = np.linalg.lstsq(D, t, rcond=None)[0]
        full = self._design(s, X)

        def y_error(c: np.ndarray) -> float:
            return nrmse_of(s.transform.inverse(full @ c, sign, X), y)

        # A snap is judged on y itself: the fit of the transformed target is only a proxy.
        err0 = y_error(coef)
        is_log = s.transform.name == "log(y)"
        nb = len(s.base)
        fixed: dict[int, tuple[float, Any]] = {}
        for k in range(len(coef)):
            value = coef[k]
            if k == 0 and is_log:
                options = [
                    (float(np.log(v)), e) for v, e in constants.candidates(np.exp(value)) if v > 0
                ]
            elif 1 <= k <= nb:
                frac = Fraction(float(value)).limit_denominator(3)
                options = [(float(frac), sympy.Rational(frac.numerator, frac.denominator))]
            else:
                options = constants.candidates(float(value))
            for v, e in options:
                trial = {**fixed, k: (v, e)}
                coef_t, _ = refit(D, t, trial)
                if y_error(coef_t) <= err0 * 1.01 + 1e-9:
                    fixed, coef = trial, coef_t
                    break
        symbols = [sympy.Symbol(n) for n in names]
        parts = []
        specs = (*s.base, *s.terms)
        for k in range(len(coef)):
            c = fixed[k][1] if k in fixed else constants.rounded(float(coef[k]))
            if k == 0:
                parts.append((c, sympy.Integer(1)))
            elif is_log and k <= nb:
                parts.append((c, symbols[specs[k - 1][1]]))
            else:
                parts.append((c, library.expr(specs[k - 1], symbols)))
        if is_log:
            head = fixed[0][1] if 0 in fixed else constants.rounded(float(np.exp(coef[0])))
            factors = [e**c if k <= nb else sympy.exp(c * e) for k, (c, e) in enumerate(parts) if k]
            return head * sympy.Mul(*factors)
        total = sympy.Add(*[c * e for c, e in parts])
        return s.transform.inverse_expr(total, int(sign), symbols)
