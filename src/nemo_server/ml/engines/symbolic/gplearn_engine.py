"""The baseline engine: gplearn's genetic programming, run generation by generation within
the time budget; the final population's best programs become candidates."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from nemo_server.ml.engines.symbolic.base import Candidate, ProgressFn

_FUNCTIONS = ("add", "sub", "mul", "div", "sqrt", "log", "sin", "cos", "neg", "inv")


def program_expr(program: Any, names: list[str]) -> Any:
    """A gplearn program as a sympy expression over `names`."""
    import sympy

    ops = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        "sqrt": lambda a: sympy.sqrt(sympy.Abs(a)),
        "log": lambda a: sympy.log(sympy.Abs(a)),
        "sin": sympy.sin,
        "cos": sympy.cos,
        "neg": lambda a: -a,
        "inv": lambda a: 1 / a,
    }
    nodes = program.program
    pos = 0

    def build() -> Any:
        nonlocal pos
        node = nodes[pos]
        pos += 1
        if hasattr(node, "arity"):
            args = [build() for _ in range(node.arity)]
            return ops[node.name](*args)
        if isinstance(node, int):
            return sympy.Symbol(names[node])
        return sympy.Float(float(node), 6)

    return build()


class GplearnEngine:
    """gplearn's SymbolicRegressor with a wall-clock budget."""

    name = "gplearn"

    def __init__(self, population_size: int = 1000, max_generations: int = 200) -> None:
        self.population_size = population_size
        self.max_generations = max_generations

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        names: list[str],
        time_budget_s: float,
        seed: int,
        progress: ProgressFn,
    ) -> list[Candidate]:
        from gplearn.genetic import SymbolicRegressor

        model = SymbolicRegressor(
            population_size=self.population_size,
            generations=1,
            function_set=_FUNCTIONS,
            parsimony_coefficient=0.001,
            metric="mse",
            random_state=seed,
            n_jobs=1,
            warm_start=True,
            const_range=(-5.0, 5.0),
        )
        start = time.monotonic()
        per_gen = 0.0
        generation = 0
        with np.errstate(all="ignore"):
            while generation < self.max_generations:
                began = time.monotonic()
                if began + per_gen > start + time_budget_s:
                    break
                generation += 1
                model.set_params(generations=generation)
                model.fit(X, y)
                per_gen = max(per_gen, time.monotonic() - began)
                progress(
                    min(0.95, (time.monotonic() - start) / time_budget_s),
                    f"generation {generation}",
                )
        if generation == 0:
            return []
        population = [p for p in model._programs[-1] if p is not None]
        population.sort(key=lambda p: p.raw_fitness_)
        out = [Candidate(program_expr(model._program, names), "gplearn")]
        seen_lengths = {model._program.length_}
        for program in population:
            if program.length_ not in seen_lengths and len(out) < 20:
                seen_lengths.add(program.length_)
                out.append(Candidate(program_expr(program, names), "gplearn"))
        return out
