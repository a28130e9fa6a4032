"""Scoring kernels of the `nemo` engine: every candidate structure scored by linear algebra.

Columns are centred and scaled to unit norm, so the error left after adding a column to a
least-squares fit is one dot product away; pairs and triples of columns are scored in closed
form from their Gram matrix.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any

import numpy as np

from nemo_server.ml.engines.symbolic import library


def normalize(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centered unit-norm columns and a mask of the usable ones."""
    with np.errstate(all="ignore"):
        ok = np.all(np.isfinite(M), axis=0) & (np.max(np.abs(M), axis=0) < 1e15)
        C = M - M.mean(axis=0)
        norms = np.linalg.norm(C, axis=0)
        ok &= norms > 1e-10 * (np.max(np.abs(M), axis=0) + 1e-300) * np.sqrt(len(M))
        C = np.where(ok, C / np.where(norms > 0, norms, 1), 0.0)
    return C, ok


def extend(
    B: np.ndarray | None, idx: tuple[int, ...], tc: np.ndarray, A: np.ndarray, width: int
) -> dict[tuple[int, ...], float]:
    """The `width` best structures `idx + (j,)`, scored for every library column j at once."""
    cols = [B] if B is not None else []
    cols += [A[:, list(idx)]] if idx else []
    if cols:
        Q = np.linalg.qr(np.column_stack(cols))[0]
        e = tc - Q @ (Q.T @ tc)
        P = Q.T.astype(np.float32) @ A
        denom = 1.0 - (P * P).sum(axis=0)
    else:
        e, denom = tc, np.ones(A.shape[1])
    num = e.astype(np.float32) @ A
    gain = np.where(denom > 1e-5, num**2 / np.maximum(denom, 1e-12), 0.0)
    sse = float(e @ e) - gain
    out: dict[tuple[int, ...], float] = {}
    top = np.argpartition(sse, min(width, len(sse) - 1))[:width]
    for j in top[np.argsort(sse[top])]:
        key = tuple(sorted((*idx, int(j))))
        if len(set(key)) == len(key):
            out[key] = max(float(sse[j]), 0.0)
    return out


def best_pairs(
    B: np.ndarray | None, tc: np.ndarray, A: np.ndarray, top: int
) -> dict[tuple[int, ...], float]:
    """The `top` best pairs of columns of A, every pair scored in closed form."""
    A = A.astype(np.float64)
    if B is not None:
        Q = np.linalg.qr(B)[0]
        A = A - Q @ (Q.T @ A)
        tc = tc - Q @ (Q.T @ tc)
        norms = np.linalg.norm(A, axis=0)
        A = np.where(norms > 1e-8, A / np.where(norms > 0, norms, 1), 0.0)
    b = A.T @ tc
    G = A.T @ A
    with np.errstate(all="ignore"):
        det = 1.0 - G**2
        explained = (b[:, None] ** 2 + b[None, :] ** 2 - 2 * G * b[:, None] * b[None, :]) / det
    explained[~np.isfinite(explained) | (det < 1e-8)] = -np.inf
    explained[np.tril_indices(len(b))] = -np.inf
    flat = np.argpartition(-explained.ravel(), min(top, explained.size - 1))[:top]
    total = float(tc @ tc)
    out: dict[tuple[int, ...], float] = {}
    for f in flat:
        i, j = divmod(int(f), len(b))
        if np.isfinite(explained[i, j]):
            out[(i, j)] = max(total - float(explained[i, j]), 0.0)
    return out


def best_triples(
    B: np.ndarray | None, tc: np.ndarray, A: np.ndarray, pairs: list[tuple[tuple, float]], top: int
) -> dict[tuple[int, ...], float]:
    """The `top` best triples among the pool columns most related to the target, each scored
    exactly (sums of three similar terms escape a greedy search)."""
    A = A.astype(np.float64)
    if B is not None:
        Q = np.linalg.qr(B)[0]
        A = A - Q @ (Q.T @ A)
        tc = tc - Q @ (Q.T @ tc)
        norms = np.linalg.norm(A, axis=0)
        A = np.where(norms > 1e-8, A / np.where(norms > 0, norms, 1), 0.0)
    b = A.T @ tc
    chosen = [int(i) for i in np.argsort(-(b**2))[:45]]
    for key, _ in pairs[:20]:
        chosen += [i for i in key if i < A.shape[1]]
    chosen = sorted(set(chosen))
    if len(chosen) < 3:
        return {}
    combos = np.array(list(itertools.combinations(chosen, 3)))
    G = A[:, chosen].T @ A[:, chosen]
    pos = {c: k for k, c in enumerate(chosen)}
    local = np.vectorize(pos.get)(combos)
    Gs = G[local[:, :, None], local[:, None, :]] + 1e-10 * np.eye(3)
    bs = b[combos]
    try:
        sol = np.linalg.solve(Gs, bs[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        return {}
    explained = np.einsum("ij,ij->i", bs, sol)
    explained[~np.isfinite(explained) | (np.linalg.det(Gs) < 1e-8)] = -np.inf
    total = float(tc @ tc)
    out: dict[tuple[int, ...], float] = {}
    for f in np.argsort(-explained)[:top]:
        if np.isfinite(explained[f]):
            out[tuple(int(i) for i in combos[f])] = max(total - float(explained[f]), 0.0)
    return out


def common_factor(X: np.ndarray, y: np.ndarray) -> library.Spec | None:
    """The monomial factor a power-law fit of |y| finds with clearly integer exponents
    (n*k*T in n*k*T*log(V2/V1)), or None."""
    if not np.all(X > 0) or np.any(y == 0) or X.shape[1] < 2:
        return None
    design = np.column_stack([np.ones(len(y)), np.log(X)])
    target = np.log(np.abs(y))
    rows = np.arange(len(y))
    for _ in range(4):  # trimmed refits: rows where y nears zero have huge log residuals
        full = np.linalg.lstsq(design[rows], target[rows], rcond=None)[0]
        resid = np.abs(design @ full - target)
        rows = np.argsort(resid)[: int(0.7 * len(y))]
    coef = full[1:]
    powers = [
        (i, Fraction(round(p)))
        for i, p in enumerate(coef)
        if round(p) != 0 and abs(p - round(p)) < 0.08
    ]
    if not powers or len(powers) == X.shape[1]:
        return None
    return ("mono", tuple(powers))


def refit(D: np.ndarray, t: np.ndarray, fixed: dict[int, tuple[float, Any]]) -> tuple:
    free = [k for k in range(D.shape[1]) if k not in fixed]
    rest = t - sum((D[:, k] * v for k, (v, _) in fixed.items()), np.zeros_like(t))
    coef = np.zeros(D.shape[1])
    for k, (v, _) in fixed.items():
        coef[k] = v
    if free:
        coef[free] = np.linalg.lstsq(D[:, free], rest, rcond=None)[0]
    return coef, float(np.sum((D @ coef - t) ** 2))


def nrmse_of(pred: np.ndarray, y: np.ndarray) -> float:
    if not np.all(np.isfinite(pred)):
        return float("inf")
    scale = float(np.std(y)) or float(np.mean(np.abs(y))) or 1.0
    return float(np.sqrt(np.mean((pred - y) ** 2)) / scale)
