"""Genetic-interaction detection of a run's methods (SPEC 10, last bullet): per dataset and split seed.

:mod:`lsftbench.evaluation.interactions` has the statistics (non-additivity, empirical null, thresholds, labels,
TPR–FDP curves) on arrays; this module chooses the arrays from a run's files and stacks the seeds.

* **Pairs.** The test doubles whose two genes' singles are both training conditions (the doubles the observed
  ``Δ_A + Δ_B`` exists for: :func:`lsftbench.model.problem.additive_singles`), × the ``top_genes`` (1000) measured
  genes of highest control mean (:func:`lsftbench.data.mean_expression.top_expressed`). Observed
  ``Δ = x̄ − x̄_ctrl`` from the pseudobulk, in float64, each Δ computed as the fits compute theirs, so the
  ``additive`` baseline's ``ê`` is exactly 0.
* **Methods.** Every prediction file of the seed: each baseline's global fit, its LSFT and kNN at each K (the
  shards' ``local`` and ``knn``), each model of one's own, and the ``no change`` floor (``Δ̂ = 0``, ``ê =
  −(Δ_A + Δ_B)``); ``additive`` (``ê ≡ 0``) is a baseline of the config. A gene or double a method does not predict
  is NaN: every method is ranked over the pairs all of them predict (``interaction_table(test_set="common")``),
  and the table counts what was left out.
* **Pooling.** Per seed the thresholds come from that seed's test doubles; pooled over seeds, each method's TPR and
  AUC are the mean of the per-seed values with their SD across seeds (SPEC 7.1).
* **Nothing to score.** A seed none of whose test doubles has both singles in training (e.g. a GEARS simulation
  split whose test doubles are all ``combo_seen0`` / ``combo_seen1``, or a split without test doubles) has no pair,
  and one with fewer than :data:`~lsftbench.evaluation.interactions.MIN_PAIRS` pairs no empirical null: its rows
  (:func:`seed_interactions`) have NaN TPR, AUC, prevalence and thresholds with the counts (``n_doubles`` 0 in the
  first case) and no curve (:func:`unscored_reason` says why). Pooled, such a seed is left out of the means and of
  ``seeds`` (the seeds scored).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.conditions import CTRL, is_double
from ..data.mean_expression import MeanExpression, read_mean_expression, top_expressed
from ..io import read_json, read_npz
from ..labels import Labels
from ..model.problem import additive_singles
from .interactions import (
    DIRECTIONS,
    FDP_LEVELS,
    FDR_LEVEL,
    MIN_PAIRS,
    interaction_table_and_curves,
    nonadditivity,
)

__all__ = [
    "KINDS",
    "NO_CHANGE",
    "NO_ELIGIBLE_DOUBLE",
    "MethodPrediction",
    "InteractionData",
    "interaction_data",
    "method_predictions",
    "seed_interactions",
    "unscored_reason",
    "interactions_from_files",
    "pool_interactions",
]

#: The kinds of method, in table order: the floor, the global fits, LSFT, kNN, models of one's own.
KINDS = ("null", "global fit", "LSFT", "kNN", "external model")
#: The ``no change`` floor's name (``Δ̂ = 0``).
NO_CHANGE = "no change"
#: Why a seed without an eligible test double has no score (its note, its figure's panels).
NO_ELIGIBLE_DOUBLE = "no test double with both singles in training"
#: The stacked curves' columns (:func:`seed_interactions`).
_CURVE_COLUMNS = ["name", "kind", "top_pct", "direction", "cutoff", "n_found", "n_true_found", "fdp", "tpr"]


@dataclass(frozen=True)
class MethodPrediction:
    """One method's predicted Δ of a seed's test conditions: ``predicted`` is genes × ``conditions``."""

    name: str  # the baseline or model
    kind: str  # one of KINDS
    top_pct: float  # K of LSFT / kNN (NaN otherwise)
    conditions: Sequence[str]
    genes: Sequence[str]
    predicted: np.ndarray


@dataclass(frozen=True)
class InteractionData:
    """The observed side of one seed: the pairs' genes and doubles, ``Δ_A + Δ_B`` and ``e`` (genes × doubles)."""

    genes: list[str]
    doubles: list[str]
    singles_sum: np.ndarray
    observed_e: np.ndarray
    n_test_doubles: int  # test doubles of the split (some may lack a training single)

    def predicted_e(self, method: MethodPrediction) -> np.ndarray:
        """``ê = Δ̂_AB − (Δ_A + Δ_B)`` on the pairs; NaN where the method has no prediction."""
        delta = np.full(self.observed_e.shape, np.nan)
        rows = Labels(list(method.genes), name="gene").get_indexer(self.genes)
        cols = Labels(list(method.conditions), name="condition").get_indexer(self.doubles)
        have_r, have_c = rows >= 0, cols >= 0
        pred = np.asarray(method.predicted, dtype=np.float64)
        delta[np.ix_(have_r, have_c)] = pred[np.ix_(rows[have_r], cols[have_c])]
        return delta - self.singles_sum  # NaN stays NaN; exactly what nonadditivity forms


def interaction_data(pb: MeanExpression, split: Mapping[str, Sequence[str]], top_genes: int = 1000) -> InteractionData:
    """The observed non-additivity ``e`` of a split's test doubles (module docstring: which pairs)."""
    x = np.asarray(pb.X, dtype=np.float64)
    names = pd.Index(pb.obs_names)
    ctrl = x[names.get_loc(CTRL)]
    parts, _ = additive_singles({"train": list(split["train"]), "test": list(split["test"])})
    doubles = [c for c in split["test"] if c in parts]
    genes_idx = top_expressed(ctrl, top_genes)
    genes = [str(g) for g in np.asarray(pb.var_names)[genes_idx]]

    def delta(conditions: list[str]) -> np.ndarray:
        return (x[names.get_indexer(conditions)][:, genes_idx] - ctrl[genes_idx]).T

    n_doubles = sum(1 for c in split["test"] if is_double(c))
    if not doubles:
        empty = np.zeros((len(genes), 0))
        return InteractionData(genes, [], empty, empty, n_doubles)
    delta_a = delta([parts[c][0] for c in doubles])
    delta_b = delta([parts[c][1] for c in doubles])
    e = nonadditivity(delta(doubles), delta_a, delta_b)
    return InteractionData(genes, doubles, delta_a + delta_b, e, n_doubles)


def method_predictions(
    global_predictions: Mapping[str, str | os.PathLike[str]],
    lsft_predictions: Mapping[tuple[str, float], Sequence[str | os.PathLike[str]]],
    model_predictions: Mapping[str, str | os.PathLike[str]] | None = None,
) -> list[MethodPrediction]:
    """One seed's methods from its files: ``global_predictions[baseline]`` (a fit's ``.npz``: ``conditions``,
    ``genes``, ``predicted``), ``lsft_predictions[(baseline, K)]`` (that K's shard ``.npz`` files: ``local`` and
    ``knn``), ``model_predictions[model]`` (a model's scored ``.npz``)."""
    out = []
    for baseline, path in global_predictions.items():
        z = read_npz(path, ["conditions", "genes", "predicted"])
        out.append(MethodPrediction(baseline, "global fit", math.nan, z["conditions"].tolist(), z["genes"].tolist(),
                                    z["predicted"]))
    for (baseline, pct), paths in lsft_predictions.items():
        shards = [read_npz(p, ["conditions", "genes", "local", "knn"]) for p in paths]
        conds = np.concatenate([sh["conditions"] for sh in shards]).tolist()
        genes = shards[0]["genes"].tolist()
        for key, kind in (("local", "LSFT"), ("knn", "kNN")):
            pred = np.concatenate([sh[key] for sh in shards], axis=1)
            out.append(MethodPrediction(baseline, kind, float(pct), conds, genes, pred))
    for model, path in (model_predictions or {}).items():
        z = read_npz(path, ["conditions", "genes", "predicted"])
        out.append(MethodPrediction(model, "external model", math.nan, z["conditions"].tolist(), z["genes"].tolist(),
                                    z["predicted"]))
    return out


def _keys(methods: Sequence[MethodPrediction]) -> pd.DataFrame:
    return pd.DataFrame({"method_id": [f"m{i}" for i in range(len(methods))], "name": [m.name for m in methods],
                         "kind": [m.kind for m in methods], "top_pct": [m.top_pct for m in methods]})


def seed_interactions(
    data: InteractionData, methods: Sequence[MethodPrediction], *, fdr: float = FDR_LEVEL,
    levels: Sequence[float] = FDP_LEVELS, no_change: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The detection table and the stacked curves of one seed's methods (and the ``no change`` floor).

    Returns ``(table, curves)``: :func:`~lsftbench.evaluation.interactions.interaction_table` and
    :func:`~lsftbench.evaluation.interactions.interaction_curves` with the method's ``name, kind, top_pct`` in place
    of its key, plus ``n_doubles`` (doubles ranked) and ``n_test_doubles`` (the split's test doubles).

    A seed with no test double with both singles in training, or with fewer than
    :data:`~lsftbench.evaluation.interactions.MIN_PAIRS` pairs of finite ``e`` (too few for the empirical null), is
    not scored: every (method, direction) row has NaN TPR, AUC, prevalence, thresholds and null, the pair counts
    (0 without an eligible double) and ``n_doubles``; the curves are empty (:func:`unscored_reason`).
    """
    methods = list(methods)
    if no_change:
        methods.insert(0, MethodPrediction(NO_CHANGE, "null", math.nan, data.doubles, data.genes,
                                           np.zeros_like(data.observed_e)))
    keys = _keys(methods)
    preds = {key: data.predicted_e(m) for key, m in zip(keys["method_id"], methods, strict=True)}
    if int(np.isfinite(data.observed_e).sum()) < MIN_PAIRS:  # no pair (no eligible double), or too few for a null
        table = _unscored_table(preds, data.observed_e, fdr, levels)
        curves = pd.DataFrame({c: pd.Series(dtype=object if c in ("method", "direction") else "float64")
                               for c in ["method", *_CURVE_COLUMNS[3:]]})
    else:
        table, curves = interaction_table_and_curves(preds, data.observed_e, fdr=fdr, levels=levels)

    def named(frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (rows in its order) with each method's ``name, kind, top_pct`` in place of its key."""
        rows = pd.Index(keys["method_id"]).get_indexer(frame["method"])
        method = keys.drop(columns="method_id").iloc[rows].reset_index(drop=True)
        return pd.concat([method, frame.drop(columns="method").reset_index(drop=True)], axis=1)

    table = named(table)
    # table order: floor, global fits, LSFT, kNN, models; names in their order of appearance, then K, direction
    first = {name: i for i, name in reversed(list(enumerate(table["name"])))}
    order = pd.DataFrame({"kind": table["kind"].map(KINDS.index), "name": table["name"].map(first),
                          "pct": table["top_pct"].fillna(-1.0), "direction": table["direction"] != "synergy"})
    table = table.loc[order.sort_values(list(order.columns), kind="stable").index].reset_index(drop=True)
    table.insert(3, "n_doubles", len(data.doubles))
    table.insert(4, "n_test_doubles", data.n_test_doubles)
    return table, named(curves)[_CURVE_COLUMNS]


def _unscored_table(
    preds: Mapping[str, np.ndarray], observed_e: np.ndarray, fdr: float, levels: Sequence[float],
) -> pd.DataFrame:
    """:func:`~lsftbench.evaluation.interactions.interaction_table`'s rows and columns for a seed that is not
    scored: the pair counts, every rate, threshold and null parameter NaN."""
    defined = np.isfinite(observed_e)
    common = defined & np.logical_and.reduce([np.isfinite(p) for p in preds.values()])
    rows = [{
        "method": name, "direction": direction, "n_pairs": int(common.sum()), "n_true": 0, "prevalence": math.nan,
        **{f"tpr_at_fdp_{q:g}": math.nan for q in levels}, "auc": math.nan,
        "n_left_out": int((defined & ~common).sum()), "n_true_left_out": 0,
        "n_observed_pairs": int(defined.sum()), "n_undefined_pairs": int((~defined).sum()),
        "lower": math.nan, "upper": math.nan, "delta": math.nan, "sigma": math.nan, "pi0": math.nan, "fdr": fdr,
    } for name in preds for direction in DIRECTIONS]
    return pd.DataFrame(rows)


def unscored_reason(table: pd.DataFrame) -> str | None:
    """Why a :func:`seed_interactions` table has no score (``None`` when it has one): no test double with both
    singles in training, or too few pairs for the empirical null."""
    if not len(table) or int(table["n_doubles"].iloc[0]) == 0:
        return NO_ELIGIBLE_DOUBLE
    if int(table["n_observed_pairs"].iloc[0]) < MIN_PAIRS:
        return (f"{int(table['n_observed_pairs'].iloc[0])} (test double, gene) pairs, too few for an empirical null "
                f"(at least {MIN_PAIRS})")
    return None


def interactions_from_files(
    pseudobulk: str | os.PathLike[str],
    splits: Mapping[int, str | os.PathLike[str]],
    global_predictions: Mapping[tuple[int, str], str | os.PathLike[str]],
    lsft_predictions: Mapping[tuple[int, str, float], Sequence[str | os.PathLike[str]]],
    model_predictions: Mapping[tuple[int, str], str | os.PathLike[str]] | None = None,
    *, top_genes: int = 1000, fdr: float = FDR_LEVEL,
) -> tuple[dict[int, pd.DataFrame], dict[int, pd.DataFrame]]:
    """:func:`seed_interactions` of every seed of ``splits`` (split seed → split file) from a run's files, keyed by
    seed then baseline (and K) as :func:`method_predictions` takes them. Returns ``(tables, curves)`` by seed."""
    pb = read_mean_expression(pseudobulk)
    tables, curves = {}, {}
    for seed, split_path in splits.items():
        data = interaction_data(pb, read_json(split_path), top_genes)
        methods = method_predictions(
            {b: p for (s, b), p in global_predictions.items() if s == seed},
            {(b, k): p for (s, b, k), p in lsft_predictions.items() if s == seed},
            {m: p for (s, m), p in (model_predictions or {}).items() if s == seed},
        )
        tables[seed], curves[seed] = seed_interactions(data, methods, fdr=fdr)
    return tables, curves


def pool_interactions(per_seed: Mapping[int, pd.DataFrame], levels: Sequence[float] = FDP_LEVELS) -> pd.DataFrame:
    """Pooled over seeds: per (method, direction) the mean of the per-seed TPR at each FDP level and AUC, their SD
    across seeds (``<column>_sd``, NaN for one seed), the seeds scored and the summed pair counts.

    A seed that is not scored (:func:`unscored_reason`: NaN values) is left out of the means and SDs and is not
    counted in ``seeds``; with no seed scored the values are NaN and ``seeds`` 0."""
    frames = [t.assign(seed=s, scored_seed=s if unscored_reason(t) is None else math.nan) for s, t in per_seed.items()]
    df = pd.concat(frames, ignore_index=True)
    values = [f"tpr_at_fdp_{q:g}" for q in levels] + ["auc", "prevalence"]
    keys = ["name", "kind", "top_pct", "direction"]
    grouped = df.groupby(keys, sort=False, dropna=False)
    out = grouped[values].mean()
    sd = grouped[values].std(ddof=1).add_suffix("_sd")
    counts = grouped[["n_pairs", "n_true", "n_left_out", "n_doubles"]].sum()
    out = pd.concat([out, sd, counts], axis=1)
    out["seeds"] = grouped["scored_seed"].nunique()
    return out.reset_index()
