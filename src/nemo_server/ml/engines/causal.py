"""Causal inference with DoWhy: identify, estimate with a confidence interval, refute; and
optional graph discovery with causal-learn's PC algorithm."""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from nemo_server.ml.jobs import Progress, TaskError

if TYPE_CHECKING:
    import pandas as pd

REFUTERS: dict[str, tuple[str, dict[str, Any]]] = {
    "placebo_treatment": ("placebo_treatment_refuter", {"placebo_type": "permute"}),
    "random_common_cause": ("random_common_cause", {}),
    "data_subset": ("data_subset_refuter", {"subset_fraction": 0.8}),
}


def discover_graph(frame: pd.DataFrame, alpha: float = 0.05) -> list[dict[str, str]]:
    """PC (Fisher-z tests) over the numeric columns: edges `{"from", "to", "type"}` where type
    is `directed`, `undirected` or `bidirected`."""
    from causallearn.search.ConstraintBased.PC import pc

    names = list(frame.columns)
    data = frame.to_numpy(float)
    graph = pc(data, alpha=alpha, indep_test="fisherz", show_progress=False).G.graph
    edges = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = graph[i, j], graph[j, i]
            if a == 0 and b == 0:
                continue
            if a == -1 and b == 1:
                edges.append({"from": names[i], "to": names[j], "type": "directed"})
            elif a == 1 and b == -1:
                edges.append({"from": names[j], "to": names[i], "type": "directed"})
            elif a == 1 and b == 1:
                edges.append({"from": names[i], "to": names[j], "type": "bidirected"})
            else:
                edges.append({"from": names[i], "to": names[j], "type": "undirected"})
    return edges


def _adjustment_from(edges: list[dict[str, str]], treatment: str, outcome: str) -> list[str]:
    """Neighbours of the treatment that are not its (directed) children, nor the outcome."""
    out = set()
    for e in edges:
        ends = {e["from"], e["to"]}
        if treatment not in ends:
            continue
        other = (ends - {treatment}).pop()
        if other == outcome or (e["type"] == "directed" and e["from"] == treatment):
            continue
        out.add(other)
    return sorted(out)


def run_causal(frame: pd.DataFrame, payload: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Worker task: the effect of `treatment` on `outcome`, its interval and refutations."""
    import networkx as nx
    import pandas as pd

    warnings.filterwarnings("ignore")
    logging.getLogger("dowhy").setLevel(logging.ERROR)
    from dowhy import CausalModel

    req = payload["request"]
    treatment, outcome = req["treatment"], req["outcome"]
    seed = int(req.get("seed") or 0)
    confounders: list[str] = list(req.get("confounders") or [])
    graph_edges: list[list[str]] = req.get("graph") or []
    nodes = {treatment, outcome, *confounders, *(n for e in graph_edges for n in e)}
    discovered = None
    if req.get("discover"):
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        discovered = discover_graph(frame[numeric].dropna().astype(float))
        progress(0.2, "graph discovered")
        if not confounders and not graph_edges:
            confounders = _adjustment_from(discovered, treatment, outcome)
            nodes |= set(confounders)
    data = frame[sorted(nodes)].apply(pd.to_numeric, errors="coerce").dropna()
    if len(data) < 10:
        raise TaskError("fewer than 10 rows have numbers in every column used")
    method = req.get("method", "linear_regression")
    if method != "linear_regression":
        if data[treatment].nunique() != 2:
            raise TaskError(f"{method} needs a binary treatment")
        data[treatment] = data[treatment] == data[treatment].max()
    if graph_edges:
        model = CausalModel(
            data=data,
            treatment=treatment,
            outcome=outcome,
            graph=nx.DiGraph([tuple(e) for e in graph_edges]),
        )
    else:
        model = CausalModel(
            data=data, treatment=treatment, outcome=outcome, common_causes=confounders or None
        )
    identified = model.identify_effect(proceed_when_unidentifiable=True)
    progress(0.3, "effect identified")
    level = float(req.get("confidence_level", 0.95))
    estimate = model.estimate_effect(
        identified,
        method_name=f"backdoor.{method}",
        confidence_intervals=True,
        test_significance=True,
        target_units="ate",
        method_params={
            "init_params": {
                "confidence_level": level,
                "num_simulations": 50,
                "num_null_simulations": 100,
            }
        },
    )
    effect = float(estimate.value)
    try:
        ci = [float(v) for v in np.asarray(estimate.get_confidence_intervals()).ravel()[:2]]
    except Exception:  # some estimators have no interval
        ci = None
    try:
        p_value = float(np.asarray(estimate.test_stat_significance()["p_value"]).ravel()[0])
    except Exception:
        p_value = None
    progress(0.5, "effect estimated")
    refutations = []
    names = req.get("refutations") or []
    sims = int(req.get("refutation_simulations") or 20)
    for k, name in enumerate(names):
        method_name, kwargs = REFUTERS[name]
        ref = model.refute_estimate(
            identified,
            estimate,
            method_name=method_name,
            num_simulations=sims,
            random_seed=seed,
            **kwargs,
        )
        result = ref.refutation_result or {}
        p = result.get("p_value")
        p = float(p) if p is not None else None
        # Each refuter expects "no significant change": a placebo effect near zero, or the
        # same effect with a random common cause or on a subset of the data.
        refutations.append(
            {
                "name": name,
                "new_effect": float(np.asarray(ref.new_effect).ravel()[0]),
                "p_value": p,
                "passed": p is None or p >= 0.05,
            }
        )
        progress(0.5 + 0.5 * (k + 1) / len(names), f"refutation {name}")
    return {
        "treatment": treatment,
        "outcome": outcome,
        "method": f"backdoor.{method}",
        "effect": effect,
        "ci": ci,
        "confidence_level": level,
        "p_value": p_value,
        "adjustment_set": sorted(identified.get_backdoor_variables() or []),
        "estimand": str(identified.estimand_type),
        "refutations": refutations,
        "graph": graph_edges or None,
        "discovered_graph": discovered,
        "n_rows": len(data),
        "robust": all(r["passed"] for r in refutations),
    }
