"""Every method on one table (SPEC 7.3): models of one's own beside the linear baselines, LSFT, kNN and the bounds.

One row per method of one dataset — each model of one's own; each baseline's global fit; each baseline ×
K under LSFT and under kNN; the null methods; the idealized baseline, marked as using test data — over
the common test set (the perturbations every baseline and model predicts) and the genes every one of them
predicts (SPEC 7, one gene set per comparison: the comparison frame of
:func:`lsftbench.report.aggregate.dataset_frames`), sorted by the primary metric
(``leaderboard.primary_metric``, Pearson r on Δ by default). Each row has the pooled means of the
primary set of metrics with CIs (SPEC 7.1), the progress bar's % of gap closed (the same means over the same
perturbations and the same bounds as the progress bar), and the paired comparison with the best linear method
(mean difference with its paired CI, Wilcoxon p, BH q).

:func:`model_comparisons` tests each model against each baseline's global fit and against LSFT and kNN
at each K; :func:`cross_dataset_leaderboard` puts the datasets' leaderboards side by side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..evaluation.de import DE_METRICS
from ..evaluation.progress_bar import gap_closed
from ..evaluation.registry import PRIMARY_SET, label, lower_is_better
from ..evaluation.statistics import (
    Estimate,
    StatsSettings,
    bh_qvalues,
    pooled_signed_rank_p,
    stratified_bootstrap_ci,
    stratified_bootstrap_cis,
)
from ..evaluation.test_sets import defined_pairs
from .notes import gene_set_note

__all__ = [
    "method_label",
    "KINDS",
    "PRIMARY_SET",
    "LEADERBOARD_METRICS",
    "leaderboard_table",
    "leaderboard_note",
    "model_comparisons",
    "model_comparisons_note",
    "cross_dataset_leaderboard",
    "cross_dataset_note",
    "metric_label",
    "EXTERNAL_NOTE",
]

#: Kinds of method, in the order ties are listed.
KINDS = ("external model", "global fit", "LSFT", "kNN", "null method", "uses test data")
#: Every metric the leaderboard CSV has, in its column order (those a method lacks are NaN).
LEADERBOARD_METRICS = (
    "pearson_r", "centered_pearson_r", "l2", "mae", "ds_l1", "pearson_delta_top1000", "l2_top1000", "rank",
    "rank_transposed", "ds_l2", "ds_cosine", *DE_METRICS,
)
#: What the leaderboard says beside every model of one's own.
EXTERNAL_NOTE = "external predictions: not audited for leakage"
_LINEAR = ("global fit", "LSFT", "kNN")
_CI = (" CI low", " CI high")
_SD = " SD (seeds)"


def metric_label(metric: str) -> str:
    """How a metric is named in the tables (``pearson_r`` → ``Pearson r``; the registry's label)."""
    return label(metric)


def method_label(name: str, kind: str, top_pct: float = math.nan) -> str:
    """A linear method's or a model's leaderboard label: ``<baseline> · global fit``, ``<baseline> · LSFT top
    5%``, ``<baseline> · kNN top 5%``, or the model's name (``kind`` ``"external model"``)."""
    if kind == "external model":
        return name
    if kind == "global fit":
        return f"{name} · global fit"
    return f"{name} · {kind} top {top_pct:g}%"


def _defined(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``seed, condition`` pairs of each seed where every method that has ``metric`` has it defined (the progress
    bar's perturbations: :func:`defined_pairs` per seed)."""
    parts = [defined_pairs(grp, metric) for _, grp in frame.groupby("seed", sort=True)]
    return pd.concat(parts, ignore_index=True) if parts else defined_pairs(frame, metric)


def _per_seed_all(frame: pd.DataFrame, metric: str, keep: pd.DataFrame) -> dict[str, dict[int, np.ndarray]]:
    """Every method's values of one metric per seed over the perturbations of ``keep`` (sorted by condition):
    one merge for all methods, not one per method."""
    rows = frame[["method", "seed", "condition", metric]].merge(keep, on=["seed", "condition"])
    rows = rows.sort_values(["method", "seed", "condition"], kind="stable")
    out: dict[str, dict[int, np.ndarray]] = {}
    for (method, seed), g in rows.groupby(["method", "seed"], sort=False):
        out.setdefault(method, {})[int(seed)] = g[metric].to_numpy(dtype=np.float64)
    return out


def _estimates(samples: Mapping[str, Mapping[int, np.ndarray]], settings: StatsSettings) -> dict[str, Estimate]:
    """:func:`_estimate` of every method's per-seed samples of one metric; methods measured on the same
    perturbations share one bootstrap call (its rows' intervals equal separate calls, same draws)."""
    out: dict[str, Estimate] = {}
    groups: dict[tuple, list[str]] = {}
    for method, per_seed in samples.items():
        shape = tuple((s, len(v)) for s, v in sorted(per_seed.items()))
        groups.setdefault(shape, []).append(method)
    for shape, methods in groups.items():
        if len(methods) == 1 or not shape:
            for method in methods:
                out[method] = _estimate(list(samples[method].values()), settings)
            continue
        strata = [np.vstack([samples[method][s] for method in methods]) for s, _ in shape]
        strata = [x for x in strata if x.shape[1]]
        if not strata:
            out.update({method: Estimate(math.nan, math.nan, math.nan, math.nan) for method in methods})
            continue
        low, high = stratified_bootstrap_cis(strata, settings)
        means = np.array([x.mean(axis=1) for x in strata])  # seeds × methods
        sd = means.std(axis=0, ddof=1) if len(strata) > 1 else np.full(len(methods), math.nan)
        for i, method in enumerate(methods):
            out[method] = Estimate(float(means[:, i].mean()), float(low[i]), float(high[i]), float(sd[i]))
    return out


def _estimate(samples: Sequence[np.ndarray], settings: StatsSettings) -> Estimate:
    samples = [s for s in samples if len(s)]
    if not samples:
        return Estimate(math.nan, math.nan, math.nan, math.nan)
    means = [float(s.mean()) for s in samples]
    low, high = stratified_bootstrap_ci(samples, settings)
    return Estimate(float(np.mean(means)), low, high, float(np.std(means, ddof=1)) if len(means) > 1 else math.nan)


def _put(row: dict, label: str, est: Estimate, pooled: bool) -> None:
    row[label], row[label + _CI[0]], row[label + _CI[1]] = est.mean, est.low, est.high
    if pooled:
        row[label + _SD] = est.sd


def _gap(means_by_seed: Mapping[int, float], bounds: Mapping[int, tuple[float, float]], lower: bool) -> tuple[float, float]:
    """Pooled % of gap closed (mean of the per-seed values, SPEC 7.1; :func:`gap_closed` of each seed's mean and
    progress-bar bounds) and its SD across seeds."""
    values = []
    for seed, mean in means_by_seed.items():
        wap, bap = bounds.get(seed, (math.nan, math.nan))
        gap = float(gap_closed(mean, wap, bap, lower))
        if np.isfinite(gap):
            values.append(gap)
    if not values:
        return math.nan, math.nan
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


def leaderboard_table(
    frame: pd.DataFrame,
    progress: Mapping[int, pd.DataFrame],
    primary: str = "pearson_r",
    stats: StatsSettings | None = None,
    seed: int | None = None,
    spread: pd.DataFrame | None = None,
    mode_collapse_spread: float = 0.1,
    n_genes: int | None = None,
) -> pd.DataFrame:
    """The leaderboard of one dataset (module docstring): one row per method of ``frame``.

    ``frame`` is the comparison frame (:attr:`lsftbench.report.aggregate.DatasetFrames.comparison`: one row per
    seed, method and common test perturbation, every method on the same genes), ``progress`` each seed's
    progress-bar table of the same frame (WAP and BAP per metric). ``seed`` restricts to one split seed; ``None``
    pools them (mean of the per-seed means, SD across seeds, stratified bootstrap). ``spread``
    (:attr:`lsftbench.report.aggregate.DatasetFrames.comparison_spread`: ``seed, method, spread``) adds each
    method's spread ratio and ``Mode Collapse`` where it is below ``mode_collapse_spread`` (SPEC 7); ``n_genes``
    (the genes scored) a ``Genes`` column.

    Every mean of a metric is over the perturbations where every method that has the metric has it defined
    (per seed, :func:`lsftbench.evaluation.test_sets.defined_pairs`): the progress bar's set, so the % of gap
    closed is the progress bar's for every method it has a row for.
    """
    settings = stats or StatsSettings()
    if seed is not None:
        frame = frame[frame["seed"] == seed]
        progress = {seed: progress[seed]} if seed in progress else {}
    pooled = seed is None
    metrics = [m for m in LEADERBOARD_METRICS if m in frame.columns]
    keep = {m: _defined(frame, m) for m in metrics}  # per seed, as the progress bar takes them
    bounds = {
        m: {s: (float(t.loc[t["Metric"] == metric_label(m), "WAP"].iloc[0]), float(t.loc[t["Metric"] == metric_label(m), "BAP"].iloc[0]))
            for s, t in progress.items() if (t["Metric"] == metric_label(m)).any()}
        for m in metrics
    }
    info = frame.drop_duplicates("method").set_index("method")[["kind", "baseline", "top_pct"]]
    # per metric: each method's defined values per seed (a seed with an undefined value is left out for that
    # method) and their estimates, every method of the same perturbations in one bootstrap call
    samples = {m: {method: {s: v for s, v in per_seed.items() if len(v) and np.isfinite(v).all()}
                   for method, per_seed in _per_seed_all(frame, m, keep[m]).items()} for m in metrics}
    estimates = {m: _estimates(samples[m], settings) for m in metrics}
    counts = frame.groupby(["method", "seed"]).size()
    records = []
    for method, row in info.iterrows():
        rec: dict[str, object] = {"Method": method, "Kind": row["kind"], "Baseline": row["baseline"],
                                  "Top %": "" if pd.isna(row["top_pct"]) else f"{row['top_pct']:g}%"}
        for m in metrics:
            mine = samples[m].get(method, {})
            _put(rec, metric_label(m), estimates[m].get(method, Estimate(math.nan, math.nan, math.nan, math.nan)), pooled)
            if m == primary or m in PRIMARY_SET:
                gap, gap_sd = _gap({s: float(v.mean()) for s, v in mine.items()}, bounds.get(m, {}), lower_is_better(m))
                rec[f"% of gap closed ({metric_label(m)})"] = gap
                if pooled:
                    rec[f"% of gap closed ({metric_label(m)}) SD (seeds)"] = gap_sd
        rec["Perturbations"] = ", ".join(f"{n} (seed {s})" for s, n in counts.loc[method].items())
        if n_genes is not None:
            rec["Genes"] = int(n_genes)
        rec["Note"] = (EXTERNAL_NOTE if row["kind"] == "external model"
                       else "uses test data by design: an upper reference" if row["kind"] == "uses test data" else "")
        records.append(rec)
    table = pd.DataFrame.from_records(records)
    if spread is not None:
        ratios = (spread if seed is None else spread[spread["seed"] == seed]).groupby("method")["spread"].mean()
        table["Spread"] = table["Method"].map(ratios)
        table["Mode Collapse"] = [f"yes (spread {v:.2f})" if np.isfinite(v) and v < mode_collapse_spread else ""
                                  for v in table["Spread"].to_numpy(dtype=np.float64)]
    _compare_with_best_linear(table, frame, primary, keep[primary], settings, pooled)
    lower = lower_is_better(primary)
    order = table[metric_label(primary)].to_numpy(dtype=np.float64) * (1 if lower else -1)
    table = table.iloc[np.lexsort((table["Method"].to_numpy(), np.where(np.isnan(order), np.inf, order)))]
    table.insert(0, "Position", np.arange(1, len(table) + 1))
    if pooled:
        table["Seeds"] = frame["seed"].nunique()
    for m in metrics:
        table[f"Undefined ({metric_label(m)})"] = (frame.merge(keep[m].assign(_k=True), on=["seed", "condition"], how="left")
                                             .groupby("method")["_k"].apply(lambda s: int(s.isna().sum()))
                                             .reindex(table["Method"]).to_numpy())
    return table.reset_index(drop=True)


def _compare_with_best_linear(
    table: pd.DataFrame, frame: pd.DataFrame, primary: str, keep: pd.DataFrame, settings: StatsSettings, pooled: bool
) -> None:
    """Add ``vs best linear`` columns: each method minus the best linear method on the primary metric
    (positive = better), its paired CI, the Wilcoxon p and the BH q across the rows."""
    label = metric_label(primary)
    sign = -1.0 if lower_is_better(primary) else 1.0
    linear = table[table["Kind"].isin(_LINEAR)].dropna(subset=[label])
    column = f"vs best linear ({label})"
    if linear.empty:
        table[column], table["Best linear method"] = np.nan, ""
        return
    best = linear.iloc[int(np.argmax(sign * linear[label].to_numpy(dtype=np.float64)))]["Method"]
    reference = frame[frame["method"] == best].merge(keep, on=["seed", "condition"])[["seed", "condition", primary]]
    paired = frame[["method", "seed", "condition", primary]].merge(reference, on=["seed", "condition"],
                                                                   suffixes=("", "_best"))
    paired = paired.dropna(subset=[primary, f"{primary}_best"]).sort_values(["method", "seed", "condition"], kind="stable")
    by_method = dict(tuple(paired.groupby("method", sort=False)))
    differences, p_values = {}, []
    for method in table["Method"]:
        rows = by_method.get(method)
        d = np.empty(0) if rows is None else sign * (rows[primary].to_numpy(dtype=np.float64)
                                                      - rows[f"{primary}_best"].to_numpy(dtype=np.float64))
        if method == best or not len(d):
            p_values.append(math.nan)
            continue
        seeds = rows["seed"].to_numpy()
        differences[method] = {int(s): d[seeds == s] for s in sorted(set(seeds.tolist()))}
        p_values.append(pooled_signed_rank_p(seeds, rows["condition"].to_numpy(), d))
    found = _estimates(differences, settings)
    nan = Estimate(math.nan, math.nan, math.nan, math.nan)
    estimates = [found.get(method, nan) for method in table["Method"]]
    for est_label, values in ((column, [e.mean for e in estimates]), (column + _CI[0], [e.low for e in estimates]),
                              (column + _CI[1], [e.high for e in estimates])):
        table[est_label] = values
    if pooled:
        table[column + _SD] = [e.sd for e in estimates]
    table[f"p ({column})"] = p_values
    table[f"q ({column})"] = bh_qvalues(np.asarray(p_values, dtype=np.float64))
    table["Best linear method"] = best


def leaderboard_note(dataset: str, primary: str, seeds: Sequence[int], pooled: bool, confidence: float = 0.95,
                     genes: tuple[int, int] | None = None, exclude_target_gene: bool = False) -> str:
    """The Markdown note of a leaderboard; ``genes`` is (the genes scored, the dataset's measured genes)."""
    scope = (f"pooled over split seeds {', '.join(map(str, seeds))} (mean of the per-seed means, `SD` across seeds)"
             if pooled and len(seeds) > 1 else f"split seed {', '.join(map(str, seeds))}")
    label = metric_label(primary)
    return "\n".join([
        f"Dataset `{dataset}`, {scope}, on the common test set (the test perturbations every baseline and every model "
        f"of one's own predicts). One row per method, sorted by {label} (leaderboard.primary_metric). Cells "
        f"`mean [low, high]`: {100 * confidence:g} % percentile-bootstrap interval.",
        "Kind: `external model` (a model of one's own, from its predictions file; **external predictions cannot be "
        "audited for leakage**), `global fit` / `LSFT` / `kNN` (the linear baselines), `null method` (the progress "
        "bar's floor), `uses test data` (the idealized baseline: an upper reference, never a competitor).",
        f"`% of gap closed`: (score - WAP) / (BAP - WAP) of the progress bar (pooled: the mean of the per-seed values). "
        f"`vs best linear`: the method minus the best linear method on {label} (positive = better), its paired interval, "
        "the two-sided Wilcoxon signed-rank p on the per-perturbation differences and the Benjamini-Hochberg q across "
        "the rows.",
        "A perturbation whose metric is undefined for one of the methods (e.g. a Pearson r of a constant prediction) is "
        "left out of that metric for every method and counted in `Undefined`; a method with no defined value (the "
        "`no change` null for r) shows NA. The means and the % of gap closed are over the progress bar's perturbations "
        "and bounds.",
        *([gene_set_note(genes, exclude_target_gene)] if genes is not None else []),
    ])


def model_comparisons(
    frame: pd.DataFrame, stats: StatsSettings | None = None, metrics: Sequence[str] = PRIMARY_SET,
    n_genes: int | None = None,
) -> pd.DataFrame:
    """Each model of one's own against each linear method (every baseline's global fit, LSFT and kNN at
    each K) on the common test set: the mean paired difference (positive = the model is better) with its CI,
    the Wilcoxon p (pooled over seeds on each perturbation's seed-averaged difference) and the BH q per
    metric across the rows. Empty without models."""
    settings = stats or StatsSettings()
    models = list(dict.fromkeys(frame.loc[frame["kind"] == "external model", "method"]))
    linear = list(dict.fromkeys(frame.loc[frame["kind"].isin(_LINEAR), "method"]))
    pooled = frame["seed"].nunique() > 1
    records = []
    for model in models:
        mine = frame[frame["method"] == model]
        for other in linear:
            theirs = frame[frame["method"] == other]
            rows = mine.merge(theirs, on=["seed", "condition"], suffixes=("", "_other"))
            for m in metrics:
                if m not in rows.columns:
                    continue
                ok = rows[[m, f"{m}_other"]].notna().all(axis=1).to_numpy()
                sub = rows[ok].sort_values(["seed", "condition"], kind="stable")
                sign = -1.0 if lower_is_better(m) else 1.0
                d = sign * (sub[m].to_numpy(dtype=np.float64) - sub[f"{m}_other"].to_numpy(dtype=np.float64))
                rec: dict[str, object] = {"Model": model, "Compared with": other,
                                          "Kind": str(theirs["kind"].iloc[0]), "Metric": metric_label(m)}
                per_seed = [d[(sub["seed"] == s).to_numpy()] for s in sorted(sub["seed"].unique())]
                _put(rec, "Model - other", _estimate(per_seed, settings), pooled)
                rec["p"] = pooled_signed_rank_p(sub["seed"].to_numpy(), sub["condition"].to_numpy(), d) if len(d) else math.nan
                rec["Perturbations"] = int(len(d))
                records.append(rec)
    label = "Model - other"
    columns = ["Model", "Compared with", "Kind", "Metric", label, label + _CI[0], label + _CI[1],
               *([label + _SD] if pooled else []), "p", "Perturbations"]
    table = pd.DataFrame.from_records(records, columns=columns)  # without models: the header only
    table.insert(table.columns.get_loc("p") + 1, "q", np.nan)
    if n_genes is not None:
        table["Genes"] = int(n_genes)
    if len(table):
        for m, idx in table.groupby("Metric").groups.items():
            table.loc[idx, "q"] = bh_qvalues(table.loc[idx, "p"].to_numpy(dtype=np.float64))
    return table


def model_comparisons_note(dataset: str, seeds: Sequence[int], confidence: float = 0.95,
                           genes: tuple[int, int] | None = None, exclude_target_gene: bool = False) -> str:
    """The Markdown note of the model comparisons; ``genes`` is (the genes scored, the dataset's measured genes)."""
    return "\n".join([
        f"Dataset `{dataset}`, split seeds {', '.join(map(str, seeds))}, common test set. Each model of one's own against "
        "each baseline's global fit and its LSFT and kNN predictions at every top K, per metric: the mean paired "
        "difference model - other with the sign set so that **positive means the model is better** (for L2 and MAE "
        f"the other's minus the model's), its {100 * confidence:g} % paired bootstrap interval, the two-sided Wilcoxon "
        "signed-rank p (pooled: each perturbation's difference averaged over the seeds that test it) and the "
        "Benjamini-Hochberg q across the rows of one metric.",
        f"{EXTERNAL_NOTE[0].upper() + EXTERNAL_NOTE[1:]}.",
        *([gene_set_note(genes, exclude_target_gene)] if genes is not None else []),
    ])


def cross_dataset_leaderboard(tables: Mapping[str, pd.DataFrame], primary: str = "pearson_r") -> pd.DataFrame:
    """The datasets' leaderboards side by side: per method its primary metric (with CI) and % of gap closed per
    dataset, and the mean over the datasets where it was run in all of them; sorted by that mean."""
    label = metric_label(primary)
    gap = f"% of gap closed ({label})"
    merged: pd.DataFrame | None = None
    for dataset, table in tables.items():
        cols = {label: f"{label} ({dataset})", label + _CI[0]: f"{label} ({dataset}){_CI[0]}",
                label + _CI[1]: f"{label} ({dataset}){_CI[1]}", gap: f"{gap} ({dataset})"}
        part = table[["Method", "Kind", *[c for c in cols if c in table.columns]]].rename(columns=cols)
        merged = part if merged is None else merged.merge(part, on=["Method", "Kind"], how="outer")
    if merged is None:
        return pd.DataFrame(columns=["Position", "Method", "Kind"])
    values = merged[[f"{label} ({d})" for d in tables]].to_numpy(dtype=np.float64)
    merged[f"Mean {label} over datasets"] = np.where(np.isfinite(values).all(axis=1), values.mean(axis=1), np.nan)
    gaps = merged[[c for c in (f"{gap} ({d})" for d in tables) if c in merged.columns]].to_numpy(dtype=np.float64)
    merged[f"Mean {gap} over datasets"] = np.where(np.isfinite(gaps).all(axis=1) & (gaps.shape[1] == len(tables)),
                                                  gaps.mean(axis=1) if gaps.size else np.nan, np.nan)
    sign = 1 if lower_is_better(primary) else -1
    key = sign * merged[f"Mean {label} over datasets"].to_numpy(dtype=np.float64)
    merged = merged.iloc[np.lexsort((merged["Method"].to_numpy(), np.where(np.isnan(key), np.inf, key)))]
    merged.insert(0, "Position", np.arange(1, len(merged) + 1))
    merged["Note"] = np.where(merged["Kind"] == "external model", EXTERNAL_NOTE,
                              np.where(merged["Kind"] == "uses test data", "uses test data by design", ""))
    return merged.reset_index(drop=True)


def cross_dataset_note(primary: str = "pearson_r") -> str:
    """The Markdown note of the leaderboard across datasets."""
    label = metric_label(primary)
    return "\n".join([
        f"Each dataset's pooled leaderboard (its common test set, split seeds pooled): {label} with its interval and the "
        "% of gap closed per dataset; `Mean ... over datasets`: the mean of the per-dataset values, for the methods "
        "run on every dataset (a cross-dataset baseline is not run on its own source dataset), which orders the rows.",
        f"{EXTERNAL_NOTE[0].upper() + EXTERNAL_NOTE[1:]}; the idealized baseline uses test data by design.",
    ])
