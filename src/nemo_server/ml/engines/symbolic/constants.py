"""Snapping fitted constants to the simple closed forms physics formulas use (1/2, 4*pi...)."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

# (value, sympy builder name, cost): bases a constant may be a small fraction of.
_BASES: list[tuple[float, str, int]] = [
    (1.0, "1", 0),
    (math.pi, "pi", 3),
    (1 / math.pi, "1/pi", 3),
    (math.sqrt(2), "sqrt(2)", 3),
    (math.sqrt(math.pi), "sqrt(pi)", 4),
    (math.sqrt(2 * math.pi), "sqrt(2*pi)", 4),
    (1 / math.sqrt(2 * math.pi), "1/sqrt(2*pi)", 5),
    (math.e, "E", 3),
    (math.pi**2, "pi**2", 4),
]


def _sym(name: str) -> Any:
    import sympy

    return sympy.sympify(name)


def candidates(value: float, *, rel: float = 0.02, max_den: int = 12) -> list[tuple[float, Any]]:
    """Simple constants near `value`, simplest first: (float, sympy expression)."""
    import sympy

    if not math.isfinite(value):
        return []
    found: list[tuple[int, float, Any]] = [(0, 0.0, sympy.Integer(0))]
    for base, name, cost in _BASES:
        ratio = Fraction(value / base).limit_denominator(max_den)
        if ratio == 0:
            continue
        approx = float(ratio) * base
        size = abs(ratio.numerator) + ratio.denominator
        # Big fractions fit anything roughly: they must match much more closely.
        allowed = rel if size <= 12 else (rel / 10 if size <= 30 else 1e-6)
        if abs(approx - value) > allowed * abs(value):
            continue
        score = cost + size
        found.append(
            (score, approx, sympy.Rational(ratio.numerator, ratio.denominator) * _sym(name))
        )
    # Simplest first; among equally simple ones, the closest.
    found.sort(key=lambda item: (item[0], abs(item[1] - value)))
    seen: set[float] = set()
    out: list[tuple[float, Any]] = []
    for _, approx, expr in found:
        key = round(approx, 12)
        if key not in seen:
            seen.add(key)
            out.append((approx, expr))
    return out


def rounded(value: float, digits: int = 6) -> Any:
    """A float constant kept to `digits` significant digits."""
    import sympy

    if value == 0:
        return sympy.Integer(0)
    return sympy.Float(float(f"{value:.{digits}g}"), digits)
