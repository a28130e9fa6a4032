"""The term library of the `nemo` engine: monomials, unary functions of monomials, and their
products, each a spec tuple that yields both numbers (numpy) and a formula (sympy).

Specs:
- `("mono", ((i, p), ...))`: a product of powers of variables (p a Fraction);
- `("diff", i, j, p)`: `(x_i - x_j)**p`;
- `("fn", name, c, inner, power)`: `name(c * inner)**power` with `inner` a mono/diff spec;
- `("prod", outer, fn)`: `outer * fn`;
- `("log", i)`: `log(x_i)` (used as the base of power laws in log space).
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any

import numpy as np

Spec = tuple[Any, ...]
F = Fraction

FUNCS: dict[str, Any] = {
    "sin": np.sin,
    "cos": np.cos,
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
}


def _powers(col: np.ndarray, p: Fraction) -> np.ndarray:
    with np.errstate(all="ignore"):
        if p.denominator == 1:
            return col ** int(p.numerator) if p > 0 else 1.0 / col ** int(-p.numerator)
        return np.power(col, float(p))


def values(spec: Spec, X: np.ndarray, cache: dict[Spec, np.ndarray] | None = None) -> np.ndarray:
    """The spec evaluated on the rows of X (may hold inf/nan where undefined)."""
    if cache is not None and spec in cache:
        return cache[spec]
    kind = spec[0]
    with np.errstate(all="ignore"):
        if kind == "mono":
            out = np.ones(X.shape[0])
            for i, p in spec[1]:
                out = out * _powers(X[:, i], p)
        elif kind == "diff":
            out = _powers(X[:, spec[1]] - X[:, spec[2]], spec[3])
        elif kind == "fn":
            _, name, c, inner, power = spec
            out = FUNCS[name](float(c) * values(inner, X, cache)) ** power
        elif kind == "prod":
            out = values(spec[1], X, cache) * values(spec[2], X, cache)
        elif kind == "log":
            out = np.log(X[:, spec[1]])
        else:  # pragma: no cover - specs are built here only
            raise ValueError(f"unknown spec {spec!r}")
    if cache is not None:
        cache[spec] = out
    return out


def expr(spec: Spec, symbols: list[Any]) -> Any:
    """The spec as a sympy expression over `symbols`."""
    import sympy

    kind = spec[0]
    if kind == "mono":
        out = sympy.Integer(1)
        for i, p in spec[1]:
            out = out * symbols[i] ** sympy.Rational(p.numerator, p.denominator)
        return out
    if kind == "diff":
        p = spec[3]
        return (symbols[spec[1]] - symbols[spec[2]]) ** sympy.Rational(p.numerator, p.denominator)
    if kind == "fn":
        _, name, c, inner, power = spec
        fn = getattr(sympy, name)
        return fn(sympy.Rational(c.numerator, c.denominator) * expr(inner, symbols)) ** power
    if kind == "prod":
        return expr(spec[1], symbols) * expr(spec[2], symbols)
    if kind == "log":
        return sympy.log(symbols[spec[1]])
    raise ValueError(f"unknown spec {spec!r}")


def monomials(d: int) -> list[Spec]:
    """Products of powers of up to five variables, fewer and smaller powers as d grows."""
    singles = [F(p) for p in (-3, -2, -1, 1, 2, 3)] + [F(-1, 2), F(1, 2)]
    out: list[Spec] = [("mono", ((i, p),)) for i in range(d) for p in singles]
    small, unit = [F(-2), F(-1), F(1), F(2)], [F(-1), F(1)]
    plans = [
        (2, small),
        (3, small if d <= 7 else unit),
        (4, unit if d <= 8 else []),
        (5, unit if d <= 7 else []),
    ]
    for size, powers in plans:
        if not powers or size > d:
            continue
        for idx in itertools.combinations(range(d), size):
            for ps in itertools.product(powers, repeat=size):
                out.append(("mono", tuple(zip(idx, ps, strict=True))))
    return out


def inner_terms(d: int) -> list[Spec]:
    """Arguments of unary functions: single variables and their squares, pairs, differences."""
    out: list[Spec] = [("mono", ((i, F(p)),)) for i in range(d) for p in (1, -1, 2, -2)]
    for i, j in itertools.combinations(range(d), 2):
        out += [("mono", ((i, F(a)), (j, F(b)))) for a in (1, -1) for b in (1, -1)]
        if d <= 6:
            out.append(("diff", i, j, F(1)))
    return out


def build(d: int, max_terms: int, pool: int = 2500) -> tuple[list[Spec], int]:
    """The whole library cut at `max_terms`, and how many of its first terms form the pool
    searched exhaustively for pairs (simple monomials, differences, main unary functions)."""
    mono = monomials(d)
    simple = [m for m in mono if len(m[1]) <= 2]
    rest_mono = [m for m in mono if len(m[1]) > 2]
    inner = inner_terms(d)
    main: list[Spec] = []
    fns: list[Spec] = []
    for arg in inner:
        main += [
            ("fn", "sin", F(1), arg, 1),
            ("fn", "cos", F(1), arg, 1),
            ("fn", "sin", F(1), arg, 2),
            ("fn", "cos", F(1), arg, 2),
            ("fn", "exp", F(1), arg, 1),
            ("fn", "exp", F(-1), arg, 1),
        ]
        if arg[0] == "mono" and len(arg[1]) == 1 and arg[1][0][1] == 1:
            main.append(("fn", "log", F(1), arg, 1))
        for c in (F(2), F(1, 2)):
            fns += [("fn", "sin", c, arg, 1), ("fn", "cos", c, arg, 1)]
        fns += [("fn", "exp", F(-1, 2), arg, 1), ("fn", "tanh", F(1), arg, 1)]
    diffs: list[Spec] = []
    if d <= 6:
        for i, j in itertools.combinations(range(d), 2):
            diffs += [("diff", i, j, F(p)) for p in (1, 2, -1, -2)]
    # Products: a monomial times a unary function of one variable (r*F*sin(theta)), and a
    # single variable times any main unary function (x*exp(-x/y)).
    outers = [("mono", ((i, F(p)),)) for i in range(d) for p in (1, -1, 2)]
    one_var = [f for f in main if f[3][0] == "mono" and len(f[3][1]) == 1 and f[3][1][0][1] == 1]
    wide = [m for m in mono if len(m[1]) <= 3 and all(p.denominator == 1 for _, p in m[1])]
    if d > 5:
        wide = [m for m in wide if len(m[1]) <= 2 or all(abs(p) == 1 for _, p in m[1])]
    wide.sort(key=lambda m: sum(abs(p) for _, p in m[1]))
    prods: list[Spec] = [
        ("prod", o, f) for o in wide for f in one_var if f[3][1][0][0] not in dict(o[1])
    ]
    prods += [("prod", o, f) for f in main if f not in one_var and f[1] != "log" for o in outers]
    three = [m for m in rest_mono if len(m[1]) == 3]
    if d > 5:
        three = [m for m in three if all(abs(p) == 1 for _, p in m[1])]
    head = simple + diffs + main + three
    tail = [m for m in rest_mono if m not in set(three)] + fns + prods
    ordered = (head + tail)[:max_terms]
    return ordered, min(pool, len(head), len(ordered))
