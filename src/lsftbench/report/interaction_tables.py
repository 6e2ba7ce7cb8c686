"""The genetic-interaction table and figures of a dataset with double perturbations (SPEC 10, last bullet; rule
``interactions``).

The numbers come from :mod:`lsftbench.evaluation.interaction_scores` (per seed) and
:func:`~lsftbench.evaluation.interaction_scores.pool_interactions` (pooled); this module names the columns and
methods, writes ``interactions.csv`` / ``.md`` (pooled, and per seed under ``seed<s>/``) and draws each seed's
TPR–FDP curves (:mod:`lsftbench.report.interaction_figure`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import pandas as pd

from ..evaluation.interaction_scores import NO_CHANGE, pool_interactions, unscored_reason
from ..evaluation.interactions import FDP_LEVELS
from .dataset_tables import DatasetTableSettings, write_table
from .interaction_figure import write_interaction_figure
from .leaderboard import method_label

__all__ = ["INTERACTION_TABLE", "FIGURE_KINDS", "interaction_view", "interaction_note", "write_interactions"]

#: The table's file name (``interactions.csv`` / ``.md``).
INTERACTION_TABLE = "interactions"
#: The kinds of method the figure draws (every kind is in the table): the floor, the global fits, the models.
FIGURE_KINDS = ("null", "global fit", "external model")
_KIND_LABELS = {"null": "floor", "global fit": "global fit", "LSFT": "LSFT", "kNN": "kNN",
                "external model": "external model"}


def _label(name: str, kind: str, top_pct: float) -> str:
    if kind == "null":
        return name
    return method_label(name, kind, top_pct)


def _figure_name(name: str, kind: str) -> str:
    """The figure's legend: the floors by the names :data:`~lsftbench.report.interaction_figure.FLOOR_STYLE` knows."""
    if kind == "null" and name == NO_CHANGE:
        return "no_change"
    if kind == "global fit" and name == "additive":
        return "additive"
    return _label(name, kind, math.nan)


def interaction_view(table: pd.DataFrame, pooled: bool, levels: Sequence[float] = FDP_LEVELS) -> pd.DataFrame:
    """The CSV's columns of a per-seed (:func:`~lsftbench.evaluation.interaction_scores.seed_interactions`) or pooled
    (:func:`~lsftbench.evaluation.interaction_scores.pool_interactions`) table."""
    out = pd.DataFrame({
        "Method": [_label(n, k, p) for n, k, p in zip(table["name"], table["kind"], table["top_pct"], strict=True)],
        "Baseline": table["name"],
        "Kind": table["kind"].map(_KIND_LABELS),
        "Top %": [f"{p:g}%" if pd.notna(p) else "" for p in table["top_pct"]],
        "Direction": table["direction"],
    })
    values = [(f"tpr_at_fdp_{q:g}", f"TPR at FDP {q:g}") for q in levels] + [("auc", "AUC"), ("prevalence", "Prevalence")]
    for key, label in values:
        out[label] = table[key].to_numpy()
        if pooled:
            out[f"{label} SD (seeds)"] = table[f"{key}_sd"].to_numpy()
    out["Pairs"] = table["n_pairs"].to_numpy()
    out["True Pairs"] = table["n_true"].to_numpy()
    out["Pairs Left Out"] = table["n_left_out"].to_numpy()
    out["Doubles"] = table["n_doubles"].to_numpy()
    if pooled:
        out["Seeds"] = table["seeds"].to_numpy()
    else:
        out["Test Doubles"] = table["n_test_doubles"].to_numpy()
        for key, label in (("lower", "Lower Threshold"), ("upper", "Upper Threshold"), ("delta", "Null δ"),
                           ("sigma", "Null σ"), ("pi0", "Null π0")):
            out[label] = table[key].to_numpy()
    return out


def interaction_note(per_seed: Mapping[int, pd.DataFrame], seed: int | None, top_genes: int) -> str:
    """The Markdown note: the pairs, the thresholds of each seed, how to read TPR, FDP and AUC, the floors."""
    seeds = sorted(per_seed) if seed is None else [seed]
    lines = []
    for s in seeds:
        t = per_seed[s].iloc[0]
        reason = unscored_reason(per_seed[s])
        if reason is not None:  # nothing to rank: NaN rows
            n, n_test = int(t["n_doubles"]), int(t["n_test_doubles"])
            what = (f"{reason} (0 of {n_test} test doubles; `Doubles` 0 in the CSV)" if n == 0 else
                    f"{n} of {n_test} test doubles with both singles in training, {reason}")
            lines.append(f"seed {s}: **nothing to score**, {what}: its TPR, AUC and prevalence are NaN"
                         + ("; the pooled values are over the seeds scored (`Seeds`)" if seed is None else ""))
            continue
        lines.append(
            f"seed {s}: {int(t['n_doubles'])} of {int(t['n_test_doubles'])} test doubles (those with both singles in "
            f"training) × {int(t['n_observed_pairs'] // max(int(t['n_doubles']), 1))} genes; empirical null "
            f"N({t['delta']:.4f}, {t['sigma']:.4f}²), π0 {t['pi0']:.3f}; thresholds e < {t['lower']:.4f} "
            f"(suppression) and e > {t['upper']:.4f} (synergy) at local fdr {t['fdr']:g}"
        )
    scope = "pooled over split seeds: mean of the per-seed values, `SD (seeds)` in the CSV" if seed is None else (
        f"split seed {seed}")
    return "\n".join([
        f"Genetic interactions (SPEC 10), {scope}. Observed non-additivity e = Δ_AB − (Δ_A + Δ_B) of each test double "
        f"and each of the {top_genes} genes of highest control mean (every measured gene when fewer), with the observed "
        "training singles' Δ; "
        "a method's ê = Δ̂_AB − (Δ_A + Δ_B). Synergy: e above the upper threshold, suppression: below the lower one "
        "(local fdr under an empirical null fitted by central matching to the bulk of e).",
        "",
        *[f"- {line}" for line in lines],
        "",
        "Per method and direction the pairs are ranked by ê (descending for synergy, ascending for suppression): "
        "`TPR at FDP q` is the largest share of the true pairs found at a cutoff whose false discovery proportion "
        "(false / found) is at most q; `AUC` the area under that curve over FDP 0 to 1 (1 = perfect; a method "
        "that ranks at random, or ties every pair, scores about the `Prevalence`, the share of true pairs). "
        "`additive` (ê ≡ 0) and `no change` (Δ̂ = 0, ê = −(Δ_A + Δ_B)) are the floors: additive's TPR is 0. "
        "Every method is ranked over the pairs all of them predict (`Pairs Left Out`: a gene or double some method "
        "does not predict).",
    ])


def write_interactions(
    per_seed: Mapping[int, pd.DataFrame], curves: Mapping[int, pd.DataFrame], root: str | os.PathLike[str],
    figures: Mapping[int, Sequence[str | os.PathLike[str]]], s: DatasetTableSettings, provenance: str | None = None,
) -> pd.DataFrame:
    """Write the pooled and per-seed ``interactions`` tables under ``root`` and each seed's figure to
    ``figures[seed]`` (PNG and SVG paths); returns the pooled table's view. A seed with nothing to score
    (:func:`~lsftbench.evaluation.interaction_scores.unscored_reason`) gets NaN rows, a note saying why, and a figure
    whose panels say it."""
    root = str(root)
    for seed, table in per_seed.items():
        write_table(interaction_view(table, pooled=False), interaction_note(per_seed, seed, s.top_genes),
                    f"Genetic interactions, split seed {seed} ({s.dataset})", f"{root}/seed{seed}", INTERACTION_TABLE, s)
        curve = curves[seed]
        curve = curve[curve["kind"].isin(FIGURE_KINDS)]
        methods = pd.MultiIndex.from_frame(curve[["name", "kind"]])
        names = methods.unique()  # one label per method, not per curve point
        labels = pd.Series([_figure_name(n, k) for n, k in names], dtype=object)
        curve = curve.assign(method=labels.iloc[names.get_indexer(methods)].to_numpy())
        write_interaction_figure(curve, figures[seed], protocol=s.protocol, provenance=provenance,
                                 title=f"Genetic interactions: TPR vs FDP, split seed {seed} ({s.dataset})",
                                 empty=unscored_reason(table))
    pooled = interaction_view(pool_interactions(per_seed), pooled=True)
    write_table(pooled, interaction_note(per_seed, None, s.top_genes), f"Genetic interactions ({s.dataset})", root,
                INTERACTION_TABLE, s)
    return pooled
