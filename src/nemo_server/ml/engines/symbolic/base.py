"""What every symbolic-regression engine shares: the Protocol and the candidate type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

ProgressFn = Callable[[float, str | None], None]


@dataclass
class Candidate:
    """One formula an engine proposes (a sympy expression over the feature names)."""

    expr: Any
    source: str


class SymbolicEngine(Protocol):
    """A symbolic-regression search."""

    name: str

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        names: list[str],
        time_budget_s: float,
        seed: int,
        progress: ProgressFn,
    ) -> list[Candidate]:
        """Formulas for y over the columns of X (named `names`), found within the budget."""
        ...
