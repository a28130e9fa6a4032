"""Checks of structured claims against a dataset (means, shares, correlations, group
differences, causal effects, formulas): a verdict, the computed value and the evidence."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from nemo_server.common.errors import Unprocessable
from nemo_server.ml import schemas

if TYPE_CHECKING:
    import pandas as pd

STRENGTH = {"any": 0.0, "weak": 0.1, "moderate": 0.3, "strong": 0.5}
FUNCTIONS = {
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "tanh",
    "exp",
    "log",
    "sqrt",
    "Abs",
    "abs",
    "pi",
    "E",
    "sign",
}
_ALLOWED = re.compile(r"^[A-Za-z0-9_.+\-*/^() ,]*$")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def claim_columns(claim: Any) -> dict[str, tuple[list[str], bool]]:
    """Columns each claim field names, and whether they must be numeric."""
    match claim:
        case schemas.MeanClaim():
            return {"column": ([claim.column], True)}
        case schemas.ShareClaim():
            return {"column": ([claim.column], False)}
        case schemas.CorrelationClaim():
            return {"x": ([claim.x], True), "y": ([claim.y], True)}
        case schemas.GroupDifferenceClaim():
            return {"column": ([claim.column], True), "group_by": ([claim.group_by], False)}
        case schemas.CausalClaim():
            return {
                "treatment": ([claim.treatment], True),
                "outcome": ([claim.outcome], True),
                "confounders": (claim.confounders, True),
            }
        case schemas.FormulaClaim():
            return {"target": ([claim.target], True)}
    return {}


def _compare(computed: float, op: str, value: float, tol: float) -> bool:
    if op in ("eq", "approx"):
        scale = abs(value) if value != 0 else 1.0
        return abs(computed - value) <= tol * scale
    return {
        "gt": computed > value,
        "ge": computed >= value,
        "lt": computed < value,
        "le": computed <= value,
    }[op]


def _verdict(ok: bool | None) -> str:
    return "inconclusive" if ok is None else ("supported" if ok else "refuted")


def parse_formula(text: str, columns: list[str], param: str) -> Any:
    """A sympy expression over dataset columns; only column names and known functions allowed."""
    import sympy

    if not _ALLOWED.match(text) or "__" in text:
        raise Unprocessable(
            f"{param}: the formula has characters that are not allowed", param=param
        )
    names = set(_NAME.findall(text))
    unknown = sorted(n for n in names if n not in FUNCTIONS and n not in columns)
    if unknown:
        raise Unprocessable(f"{param}: unknown name {unknown[0]!r} in the formula", param=param)
    local = {n: sympy.Symbol(n) for n in names if n in columns}
    local["abs"] = sympy.Abs
    try:
        return sympy.sympify(text.replace("^", "**"), locals=local)
    except (sympy.SympifyError, SyntaxError, TypeError, ValueError) as exc:
        raise Unprocessable(f"{param}: cannot parse the formula: {exc}", param=param) from None


def _ols(y: Any, X: Any) -> tuple[Any, Any, int]:
    import numpy as np

    design = np.column_stack([np.ones(len(y)), X])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    dof = max(1, len(y) - design.shape[1])
    sigma2 = float(resid @ resid) / dof
    cov = sigma2 * np.linalg.pinv(design.T @ design)
    return coef, np.sqrt(np.clip(np.diag(cov), 0, None)), dof


def check(index: int, claim: Any, frame: pd.DataFrame) -> dict[str, Any]:
    """The verdict on one claim."""
    import numpy as np
    import pandas as pd
    from scipy import stats

    out: dict[str, Any] = {"index": index, "type": claim.type, "value": None, "evidence": {}}
    if isinstance(claim, schemas.MeanClaim):
        col = pd.to_numeric(frame[claim.column], errors="coerce").dropna()
        computed = float(getattr(col, claim.type)())
        ok = _compare(computed, claim.op, claim.value, claim.tolerance)
        out.update(
            value=computed,
            verdict=_verdict(ok),
            evidence={
                "n": len(col),
                "statistic": claim.type,
                "claimed": claim.value,
                "op": claim.op,
                "tolerance": claim.tolerance,
            },
        )
    elif isinstance(claim, schemas.ShareClaim):
        col = frame[claim.column].dropna()
        if claim.equals is None:
            hits = col.astype(bool)
        else:
            hits = col.astype(str) == str(claim.equals)
            if pd.api.types.is_numeric_dtype(col) and isinstance(claim.equals, int | float):
                hits = col == claim.equals
        computed = float(hits.mean()) if len(col) else float("nan")
        ok = _compare(computed, claim.op, claim.value, claim.tolerance) if len(col) else None
        out.update(
            value=computed,
            verdict=_verdict(ok),
            evidence={"n": len(col), "matching": int(hits.sum()), "claimed": claim.value},
        )
    elif isinstance(claim, schemas.CorrelationClaim):
        pair = frame[[claim.x, claim.y]].apply(pd.to_numeric, errors="coerce").dropna()
        fn = stats.pearsonr if claim.method == "pearson" else stats.spearmanr
        if len(pair) < 3:
            r, p = float("nan"), float("nan")
            ok = None
        else:
            r, p = (float(v) for v in fn(pair[claim.x], pair[claim.y]))
            significant = p < claim.alpha
            if claim.sign == "none":
                ok = not significant or abs(r) < 0.1
            elif not significant:
                ok = False if len(pair) >= 30 else None
            else:
                ok = (r > 0) == (claim.sign == "positive") and abs(r) >= STRENGTH[claim.strength]
        out.update(
            value=r,
            verdict=_verdict(ok),
            evidence={
                "r": r,
                "p_value": p,
                "n": len(pair),
                "method": claim.method,
                "strength_threshold": STRENGTH[claim.strength],
            },
        )
    elif isinstance(claim, schemas.GroupDifferenceClaim):
        keys = frame[claim.group_by].astype(str)
        values = pd.to_numeric(frame[claim.column], errors="coerce")
        a = values[keys == str(claim.a)].dropna()
        b = values[keys == str(claim.b)].dropna()
        if len(a) < 2 or len(b) < 2:
            out.update(
                verdict="inconclusive",
                evidence={
                    "n_a": len(a),
                    "n_b": len(b),
                    "reason": "a group has fewer than two rows",
                },
            )
            return out
        t, p = (float(v) for v in stats.ttest_ind(a, b, equal_var=False))
        diff = float(a.mean() - b.mean())
        significant = p < claim.alpha
        if claim.direction == "equal":
            ok: bool | None = not significant
        elif not significant:
            ok = None
        else:
            ok = (diff > 0) == (claim.direction == "greater")
        out.update(
            value=diff,
            verdict=_verdict(ok),
            evidence={
                "mean_a": float(a.mean()),
                "mean_b": float(b.mean()),
                "n_a": len(a),
                "n_b": len(b),
                "t": t,
                "p_value": p,
                "test": "Welch t-test",
            },
        )
    elif isinstance(claim, schemas.CausalClaim):
        cols = [claim.outcome, claim.treatment, *claim.confounders]
        data = frame[cols].apply(pd.to_numeric, errors="coerce").dropna()
        if len(data) < len(cols) + 3:
            out.update(verdict="inconclusive", evidence={"n": len(data), "reason": "too few rows"})
            return out
        coef, se, dof = _ols(data[claim.outcome].to_numpy(float), data[cols[1:]].to_numpy(float))
        effect, err = float(coef[1]), float(se[1])
        tval = effect / err if err > 0 else math.inf
        p = float(2 * stats.t.sf(abs(tval), dof))
        half = float(stats.t.ppf(1 - claim.alpha / 2, dof)) * err
        significant = p < claim.alpha
        if claim.direction == "none":
            ok = not significant
        elif not significant:
            ok = None
        else:
            ok = (effect > 0) == (claim.direction == "positive")
        out.update(
            value=effect,
            verdict=_verdict(ok),
            evidence={
                "effect": effect,
                "ci": [effect - half, effect + half],
                "p_value": p,
                "n": len(data),
                "adjusted_for": claim.confounders,
                "method": "backdoor adjustment, linear regression",
            },
        )
    elif isinstance(claim, schemas.FormulaClaim):
        import sympy

        columns = [str(c) for c in frame.columns]
        expr = parse_formula(claim.formula, columns, f"claims[{index}].formula")
        symbols = sorted(expr.free_symbols, key=lambda s: s.name)
        fn = sympy.lambdify(symbols, expr, "numpy")
        data = (
            frame[[s.name for s in symbols] + [claim.target]]
            .apply(pd.to_numeric, errors="coerce")
            .dropna()
        )
        y = data[claim.target].to_numpy(float)
        with np.errstate(all="ignore"):
            pred = np.broadcast_to(
                np.asarray(fn(*[data[s.name].to_numpy(float) for s in symbols]), float), y.shape
            )
        finite = np.isfinite(pred)
        rmse = (
            float(np.sqrt(np.mean((pred[finite] - y[finite]) ** 2))) if finite.any() else math.inf
        )
        scale = float(np.std(y)) or float(np.mean(np.abs(y))) or 1.0
        nrmse = rmse / scale
        ok = bool(finite.mean() > 0.99 and nrmse <= claim.tolerance) if len(y) else None
        out.update(
            value=nrmse,
            verdict=_verdict(ok),
            evidence={
                "nrmse": nrmse,
                "rmse": rmse,
                "n": len(y),
                "non_finite": int((~finite).sum()),
                "formula": str(expr),
            },
        )
    return out
