"""Every method on one table (SPEC 7.3): models of one's own beside the linear baselines, LSFT, kNN and the bounds.

One row per method of one dataset — each model of one's own; each baseline's global fit; each baseline ×
K under LSFT and under kNN; the null methods; the idealized baseline, marked as using test data — over
the common test set (the perturbations every baseline and model predicts), sorted by the primary metric
(``leaderboard.primary_metric``, Pearson r on Δ by default). Each row has the pooled means of the
primary set of metrics with CIs (SPEC 7.1), the progress bar's % of gap closed, and the paired
comparison with the best linear method (mean difference with its paired CI, Wilcoxon p, BH q).

:func:`model_comparisons` tests each model against each baseline's global fit and against LSFT and kNN
at each K; :func:`cross_dataset_leaderboard` puts the datasets' leaderboards side by side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..evaluation.de import DE_METRICS
from ..evaluation.progress_bar import CHEATER_METHODS, LOWER_IS_BETTER, METRIC_LABELS
from ..evaluation.statistics import (
    Estimate,
    StatsSettings,
    bh_qvalues,
    pooled_signed_rank_p,
    stratified_bootstrap_ci,
    stratified_bootstrap_cis,
)

__all__ = [
    "method_label",
    "KINDS",
    "PRIMARY_SET",
    "LEADERBOARD_METRICS",
    "method_frame",
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
#: The metrics of the leaderboard's Markdown (every other one is in its CSV).
PRIMARY_SET = ("pearson_r", "l2", "mae", "ds_l1")
#: Every metric the leaderboard CSV has (those a method lacks are NaN).
LEADERBOARD_METRICS = (
    "pearson_r", "centered_pearson_r", "l2", "mae", "ds_l1", "pearson_delta_top1000", "l2_top1000", "rank",
    "rank_transposed", "ds_l2", "ds_cosine", *DE_METRICS,
)
_LOWER = frozenset({*LOWER_IS_BETTER, "rank", "rank_transposed", "mse_de"})
_LABELS = {
    **METRIC_LABELS, "ds_l1": "Discrimination (L1)", "ds_l2": "Discrimination (L2)", "ds_cosine": "Discrimination (cosine)",
    "rank": "Rank", "rank_transposed": "Transposed Rank", "de_overlap": "DE overlap", "de_top20": "DE top 20",
    "de_top50": "DE top 50", "de_top100": "DE top 100", "de_direction": "DE direction", "de_spearman": "DE Spearman",
    "pearson_de_delta": "Pearson r, DE genes", "mse_de": "MSE, DE genes",
}
#: What the leaderboard says beside every model of one's own.
EXTERNAL_NOTE = "external predictions: not audited for leakage"
_LINEAR = ("global fit", "LSFT", "kNN")
_CI = (" CI low", " CI high")
_SD = " SD (seeds)"


def metric_label(metric: str) -> str:
    """How a metric is named in the tables (``pearson_r`` → ``Pearson r``)."""
    return _LABELS.get(metric, metric)


def method_label(name: str, kind: str, top_pct: float = math.nan) -> str:
    """A linear method's or a model's leaderboard label: ``<baseline> · global fit``, ``<baseline> · LSFT top
    5%``, ``<baseline> · kNN top 5%``, or the model's name (``kind`` ``"external model"``)."""
    if kind == "external model":
        return name
    if kind == "global fit":
        return f"{name} · global fit"
    return f"{name} · {kind} top {top_pct:g}%"


def method_frame(
    per_perturbation: pd.DataFrame,
    models: pd.DataFrame | None,
    method_scores: Mapping[int, pd.DataFrame],
) -> pd.DataFrame:
    """Every method's per-perturbation metrics over the common test set, one row per (seed, method, condition).

    ``per_perturbation`` is the baselines' frame (global, LSFT and kNN columns, ``in_common_test_set``),
    ``models`` the models' frame, ``method_scores`` each seed's null and idealized methods
    (:func:`lsftbench.evaluation.progress_bar.method_scores`). Columns: ``seed, method, kind, baseline,
    top_pct, condition`` and the :data:`LEADERBOARD_METRICS` each method has.
    """
    df = per_perturbation
    if "in_common_test_set" in df.columns:
        df = df[df["in_common_test_set"].astype(bool)]
    common = set(zip(df["seed"], df["condition"]))
    parts = []
    keys = ["seed", "baseline", "top_pct", "condition"]

    def take(frame: pd.DataFrame, prefix: str, **labels: object) -> pd.DataFrame:
        columns = {f"{prefix}{m}": m for m in LEADERBOARD_METRICS if f"{prefix}{m}" in frame.columns}
        return frame[[k for k in keys if k in frame.columns] + list(columns)].rename(columns=columns).assign(**labels)

    glob = df.drop_duplicates(["seed", "baseline", "condition"])
    part = take(glob, "global_", kind="global fit", top_pct=np.nan)
    parts.append(part.assign(method=[method_label(b, "global fit") for b in part["baseline"]]))
    for prefix, kind in (("local_", "LSFT"), ("knn_", "kNN")):
        part = take(df, prefix, kind=kind)
        parts.append(part.assign(method=[method_label(b, kind, k) for b, k in zip(part["baseline"], part["top_pct"])]))
    if models is not None and len(models):
        rows = models[[(s, c) in common for s, c in zip(models["seed"], models["condition"])]]
        part = take(rows.rename(columns={"model": "baseline"}), "", kind="external model", top_pct=np.nan)
        parts.append(part.assign(method=[method_label(m, "external model") for m in part["baseline"]]))
    for seed, frame in method_scores.items():
        rows = frame[[(int(seed), c) in common for c in frame["condition"]]].assign(seed=int(seed))
        for name, grp in rows.groupby("method", sort=False):
            kind = "uses test data" if name in CHEATER_METHODS else "null method"
            parts.append(take(grp, "", kind=kind, baseline="", top_pct=np.nan).assign(method=name))
    out = pd.concat(parts, ignore_index=True)
    return out[["seed", "method", "kind", "baseline", "top_pct", "condition",
                *[m for m in LEADERBOARD_METRICS if m in out.columns]]]


def _defined(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """(seed, condition) pairs where every method that has the metric at all has it defined (SPEC 7.1)."""
    if metric not in frame.columns:
        return pd.DataFrame(columns=["seed", "condition"])
    defined = frame[metric].notna()
    has = defined.groupby(frame["method"]).any()
    rows = frame[frame["method"].isin(has[has].index)]
    ok = rows[metric].notna().groupby([rows["seed"], rows["condition"]]).all()
    return ok[ok].reset_index()[["seed", "condition"]]


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
    """Pooled % of gap closed (mean of the per-seed values, SPEC 7.1) and its SD across seeds."""
    values = []
    for seed, mean in means_by_seed.items():
        wap, bap = bounds.get(seed, (math.nan, math.nan))
        better = (wap - bap) if lower else (bap - wap)
        if np.isfinite(better) and better > 0:
            values.append(100.0 * (mean - wap) / (bap - wap))
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
) -> pd.DataFrame:
    """The leaderboard of one dataset (module docstring): one row per method of ``frame`` (:func:`method_frame`).

    ``progress`` holds each seed's progress-bar table (WAP and BAP per metric). ``seed`` restricts to one
    split seed; ``None`` pools them (mean of the per-seed means, SD across seeds, stratified bootstrap).
    ``spread`` (:attr:`lsftbench.report.aggregate.DatasetFrames.spread`) adds each method's spread ratio and
    ``Mode Collapse`` where it is below ``mode_collapse_spread`` (SPEC 7).
    """
    settings = stats or StatsSettings()
    if seed is not None:
        frame = frame[frame["seed"] == seed]
        progress = {seed: progress[seed]} if seed in progress else {}
    pooled = seed is None
    metrics = [m for m in LEADERBOARD_METRICS if m in frame.columns]
    keep = {m: _defined(frame, m) for m in metrics}
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
                gap, gap_sd = _gap({s: float(v.mean()) for s, v in mine.items()}, bounds.get(m, {}), m in _LOWER)
                rec[f"% of gap closed ({metric_label(m)})"] = gap
                if pooled:
                    rec[f"% of gap closed ({metric_label(m)}) SD (seeds)"] = gap_sd
        rec["Perturbations"] = ", ".join(f"{n} (seed {s})" for s, n in counts.loc[method].items())
        rec["Note"] = (EXTERNAL_NOTE if row["kind"] == "external model"
                       else "uses test data by design: an upper reference" if row["kind"] == "uses test data" else "")
        records.append(rec)
    table = pd.DataFrame.from_records(records)
    if spread is not None:
        ratios = _spread_by_method(spread if seed is None else spread[spread["seed"] == seed])
        table["Spread"] = table["Method"].map(ratios)
        table["Mode Collapse"] = [f"yes (spread {v:.2f})" if np.isfinite(v) and v < mode_collapse_spread else ""
                                  for v in table["Spread"].to_numpy(dtype=np.float64)]
    _compare_with_best_linear(table, frame, primary, keep[primary], settings, pooled)
    lower = primary in _LOWER
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


def _spread_by_method(spread: pd.DataFrame) -> dict[str, float]:
    """Each method's spread ratio (mean over seeds) by its leaderboard label."""
    kinds = {"global": "global fit", "local": "LSFT", "knn": "kNN", "external": "external model"}
    labels = [method_label(baseline, kinds[method], pct)
              for baseline, pct, method in zip(spread["baseline"], spread["top_pct"], spread["method"])]
    return spread.assign(label=labels).groupby("label")["spread"].mean().to_dict()


def _compare_with_best_linear(
    table: pd.DataFrame, frame: pd.DataFrame, primary: str, keep: pd.DataFrame, settings: StatsSettings, pooled: bool
) -> None:
    """Add ``vs best linear`` columns: each method minus the best linear method on the primary metric
    (positive = better), its paired CI, the Wilcoxon p and the BH q across the rows."""
    label = metric_label(primary)
    sign = -1.0 if primary in _LOWER else 1.0
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


def leaderboard_note(dataset: str, primary: str, seeds: Sequence[int], pooled: bool, confidence: float = 0.95) -> str:
    """The Markdown note of a leaderboard."""
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
        "`no change` null for r) shows NA.",
    ])


def model_comparisons(
    frame: pd.DataFrame, stats: StatsSettings | None = None, metrics: Sequence[str] = PRIMARY_SET
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
                sign = -1.0 if m in _LOWER else 1.0
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
    if len(table):
        for m, idx in table.groupby("Metric").groups.items():
            table.loc[idx, "q"] = bh_qvalues(table.loc[idx, "p"].to_numpy(dtype=np.float64))
    return table


def model_comparisons_note(dataset: str, seeds: Sequence[int], confidence: float = 0.95) -> str:
    """The Markdown note of the model comparisons."""
    return "\n".join([
        f"Dataset `{dataset}`, split seeds {', '.join(map(str, seeds))}, common test set. Each model of one's own against "
        "each baseline's global fit and its LSFT and kNN predictions at every top K, per metric: the mean paired "
        "difference model - other with the sign set so that **positive means the model is better** (for L2 and MAE "
        f"the other's minus the model's), its {100 * confidence:g} % paired bootstrap interval, the two-sided Wilcoxon "
        "signed-rank p (pooled: each perturbation's difference averaged over the seeds that test it) and the "
        "Benjamini-Hochberg q across the rows of one metric.",
        f"{EXTERNAL_NOTE[0].upper() + EXTERNAL_NOTE[1:]}.",
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
    sign = 1 if primary in _LOWER else -1
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
