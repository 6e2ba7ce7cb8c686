"""Layout of the LSFT note's tables (SPEC sections 7.1 and 8): column names, order, notes, Markdown.

Every number comes from :mod:`lsftbench.evaluation.statistics`; this module only chooses rows, names columns and
formats them. Input is the per-perturbation frame of :func:`per_perturbation` (one dataset and
protocol, any number of split seeds).

Comparable means
----------------
Within a row, every mean is over the same perturbations as the means it is compared with: for each
metric family (e.g. Pearson r: local, kNN, global) a perturbation whose metric is undefined (NaN) for
any of the three is left out of all that family's means and counted in ``Undefined (<family>)``. The
improvement is the difference of the two reported means, so ``Improvement (r) == Local Pearson r −
Baseline Pearson r`` holds exactly. By default (``test_set="common"``) every row of a table is also over
the same test set: the perturbations every baseline can predict (per split seed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..evaluation.de import TESTS as _DE_TESTS
from ..evaluation.registry import METRICS, Metric
from ..evaluation.statistics import FamilySpec, FamilyStats, StatsSettings, bh_qvalues, pooled_mean, row_statistics
from ..evaluation.test_sets import common_test_set, not_predictable_list, restrict_to_test_set
from ..model.protocol import get_protocol
from ..pipeline.provenance import provenance_line

__all__ = [
    "FAMILIES",
    "protocol_label",
    "per_perturbation",
    "performance_table",
    "performance_note",
    "rank_note",
    "progress_note",
    "fraction_improved_table",
    "fraction_note",
    "de_metrics_table",
    "de_note",
    "target_gene_note",
    "gene_set_note",
    "summary_table",
    "combined_table",
    "combined_note",
    "to_markdown",
    "performance_markdown",
    "render_markdown",
    "synthetic_note",
    "GLOBAL_HEADER",
]


#: The metric families of the tables: the registry's metrics (:mod:`lsftbench.evaluation.registry`), each with
#: local, kNN and global columns ``{local,knn,global}_<name>`` in the per-perturbation frame.
FAMILIES: tuple[Metric, ...] = METRICS
_METHODS = {"local": "Local", "global": "Baseline", "knn": "kNN"}
_VS = {"global": "LSFT vs global", "knn": "LSFT vs kNN"}
_FRACTION = {"local": "Fraction Improved", "knn": "kNN Fraction Improved"}
_CI = (" CI low", " CI high")
_SD = " SD (seeds)"


# ---------------------------------------------------------------------------------------------------
# Per-perturbation rows


def _families(df: pd.DataFrame) -> list[Metric]:
    """Families whose local and global columns are present."""
    return [f for f in FAMILIES if {f"local_{f.name}", f"global_{f.name}"} <= set(df.columns)]


def per_perturbation(lsft_rows: pd.DataFrame, global_rows: pd.DataFrame) -> pd.DataFrame:
    """Join LSFT shard rows with the global fit's metrics and compute the improvements.

    Rows are matched on ``seed, baseline, condition`` (``seed`` when both frames have it). For each metric
    family present: ``improvement_<s> = local − global`` for correlations and ``global − local`` for
    distances and ranks (positive = better), likewise ``knn_improvement_<s>`` for the kNN reference.
    An LSFT row without a global-fit row is an error.
    """
    metrics = [f.name for f in FAMILIES if f.name in global_rows.columns]
    glob = global_rows.rename(columns={m: f"global_{m}" for m in metrics})
    if ("seed" in lsft_rows.columns) != ("seed" in glob.columns):
        raise ValueError("only one of the LSFT and global-fit frames has a seed column")
    keys = ["seed", "baseline", "condition"] if "seed" in glob.columns else ["baseline", "condition"]
    extra = [c for c in ("synthetic_stand_in",) if c in glob.columns and c not in lsft_rows.columns]
    keep = keys + [f"global_{m}" for m in metrics] + extra
    df = lsft_rows.merge(glob[keep], on=keys, how="left", validate="many_to_one", indicator=True)
    orphans = df.loc[df.pop("_merge") == "left_only", keys].drop_duplicates()
    if len(orphans):
        raise ValueError(f"{len(orphans)} LSFT rows have no global-fit row, e.g. {orphans.head(3).to_dict('records')}")
    for f in _families(df):
        for method, prefix in (("local", "improvement"), ("knn", "knn_improvement")):
            if f"{method}_{f.name}" in df.columns:
                gain = df[f"{method}_{f.name}"] - df[f"global_{f.name}"]
                df[f"{prefix}_{f.suffix}"] = gain if f.higher_is_better else -gain
    order = [c for c in ("seed", "baseline", "top_pct", "condition") if c in df.columns]
    return df.sort_values(order, kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------
# Performance table


def _pct(value: float) -> str:
    return f"{value:g}%"


def _select(df: pd.DataFrame, seed: int | None, test_set: str) -> pd.DataFrame:
    """Rows of one split seed (or all seeds, for a pooled table) in the chosen test set."""
    if "seed" not in df.columns:
        raise ValueError("per-perturbation rows need a 'seed' column (the split seed)")
    rows = restrict_to_test_set(df, test_set)
    if seed is not None:
        if seed not in set(df["seed"]):
            raise ValueError(f"split seed {seed} not in the rows (seeds: {sorted(set(df['seed']))})")
        rows = rows[rows["seed"] == seed]
    return rows


def _omit_top(df: pd.DataFrame, top_genes: int) -> bool:
    """Top-gene columns equal the all-gene ones when no baseline has more than ``top_genes`` genes."""
    return "n_genes" in df.columns and len(df) > 0 and int(df["n_genes"].max()) <= top_genes


def _table_families(df: pd.DataFrame, top_genes: int, table: str = "performance") -> list[Metric]:
    omit = _omit_top(df, top_genes)
    return [f for f in _families(df) if f.table == table and not (f.top_genes and omit)]


def _columns(f: Metric) -> dict[str, str]:
    return {m: f"{m}_{f.name}" for m in _METHODS}


def _spec(f: Metric, rows: pd.DataFrame) -> FamilySpec:
    """The statistics' view of family ``f``: its method columns present in ``rows``."""
    return FamilySpec({m: c for m, c in _columns(f).items() if c in rows.columns}, f.higher_is_better, f.tests)


def _put(out: dict[str, object], label: str, est, pooled: bool) -> None:
    out[label] = est.mean
    out[label + _CI[0]], out[label + _CI[1]] = est.low, est.high
    if pooled:
        out[label + _SD] = est.sd


def _family_columns(f: Metric, s: FamilyStats, top_genes: int, pooled: bool) -> dict[str, object]:
    name, key = f.labels(top_genes)
    out: dict[str, object] = {}
    for method, est in s.means.items():
        _put(out, f"{_METHODS[method]} {name}", est, pooled)
    for method, est in s.improvement.items():
        _put(out, f"{'kNN ' if method == 'knn' else ''}Improvement ({key})", est, pooled)
    for other, p in s.p.items():
        out[f"p ({_VS[other]}, {key})"] = p
    out[f"Undefined ({key})"] = s.n_undefined
    return out


def _row(
    rows: pd.DataFrame, families: list[Metric], settings: StatsSettings, top_genes: int, pooled: bool
) -> dict[str, object]:
    per_seed = [g for _, g in rows.groupby("seed", sort=True)]
    out: dict[str, object] = {
        # per-seed sizes can differ (different splits): the mean of the per-seed sizes, rounded half up
        "Train Size": int(np.floor(pooled_mean([g["train_size"] for g in per_seed]) + 0.5)),
        "Mean Similarity": pooled_mean([g["mean_similarity"].dropna() for g in per_seed]),
        "Test Perturbations": len(rows),  # summed over the seeds; per seed in the next column
        "Test Perturbations (per seed)": ", ".join(f"{len(g)} (seed {int(g['seed'].iloc[0])})" for g in per_seed),
    }
    # one bootstrap for all families' rows; the fractions improved are fraction_improved_table's
    for f, fam in zip(families, row_statistics(rows, [_spec(f, rows) for f in families], settings, fractions=False)):
        out.update(_family_columns(f, fam, top_genes, pooled))
    if pooled:
        out["Seeds"] = len(per_seed)
    if "n_genes" in rows.columns:
        out["Genes"] = int(rows["n_genes"].max())
    if "synthetic_stand_in" in rows.columns:
        out["Synthetic Stand-in"] = rows["synthetic_stand_in"].fillna("").iloc[0]
    return out


def _add_qvalues(table: pd.DataFrame) -> pd.DataFrame:
    """A q column beside every p column: Benjamini–Hochberg across all rows of the table."""
    for col in [c for c in table.columns if c.startswith("p (")]:
        table.insert(table.columns.get_loc(col) + 1, "q" + col[1:], bh_qvalues(table[col].to_numpy()))
    return table


def _with_ci(labels: Iterable[str], pooled: bool) -> list[str]:
    tail = [*_CI, _SD] if pooled else list(_CI)
    return [c for label in labels for c in (label, *(label + t for t in tail))]


def _layout(families: list[Metric], top_genes: int, pooled: bool) -> list[str]:
    """Column order: the note's ten columns first, then kNN, tests, further families, counts."""
    named = {f.name: f.labels(top_genes) for f in families}
    r, l2 = named.get("pearson_r", ("Pearson r", "r")), named.get("l2", ("L2", "L2"))
    first = [f"Local {r[0]}", f"Baseline {r[0]}", f"Improvement ({r[1]})",
             f"Local {l2[0]}", f"Baseline {l2[0]}", f"Improvement ({l2[1]})"]
    cols = ["Baseline", "Top %", *_with_ci(first, pooled), "Train Size", "Mean Similarity"]
    cols += _with_ci([f"kNN {r[0]}", f"kNN Improvement ({r[1]})", f"kNN {l2[0]}", f"kNN Improvement ({l2[1]})"], pooled)
    for f in families:
        name, key = named[f.name]
        if f.tests:
            cols += [f"{pq} ({_VS[o]}, {key})" for o in _VS for pq in ("p", "q")]
        if f.name not in ("pearson_r", "l2"):
            values = [f"Local {name}", f"Baseline {name}", f"kNN {name}", f"Improvement ({key})", f"kNN Improvement ({key})"]
            cols += _with_ci(values, pooled)
    cols += ["Test Perturbations", "Test Perturbations (per seed)", *[f"Undefined ({named[f.name][1]})" for f in families]]
    return cols + ["Seeds", "Genes", "Synthetic Stand-in"]


def _order(table: pd.DataFrame, layout: list[str], lead: list[str]) -> pd.DataFrame:
    known = lead + [c for c in layout if c in table.columns and c not in lead]
    return table[known + [c for c in table.columns if c not in known]]


def performance_table(
    df: pd.DataFrame,
    seed: int | None = None,
    test_set: str = "common",
    stats: StatsSettings | None = None,
    top_genes: int = 1000,
) -> pd.DataFrame:
    """Table 1: one row per (baseline, K) with means, bootstrap CIs and paired tests.

    Parameters
    ----------
    df
        Per-perturbation rows of one dataset and protocol (:func:`per_perturbation`), all split seeds.
    seed
        A split seed for a per-seed table; ``None`` pools over all seeds (mean of per-seed means, SD
        across seeds in ``<V> SD (seeds)``, stratified bootstrap, Wilcoxon on seed-averaged differences)
        and adds a ``Seeds`` column.
    test_set
        ``common``: per seed, the perturbations every baseline can predict; ``per_baseline``: each
        baseline over all perturbations it can predict.
    stats
        Bootstrap settings (default :class:`~lsftbench.evaluation.statistics.StatsSettings`).
    top_genes
        The top-gene count behind the ``*_top1000`` metrics: when no baseline has more genes, the
        top-gene columns are omitted (they would equal the all-gene ones).

    Returns
    -------
    DataFrame
        Columns in the order of :func:`_layout`: ``Baseline``, ``Top %`` (``1%``), ``Local Pearson r``,
        ``Baseline Pearson r``, ``Improvement (r)``, ``Local L2``, ``Baseline L2``, ``Improvement (L2)``
        (each followed by ``CI low``/``CI high``), ``Train Size`` (int), ``Mean Similarity``; kNN; ``p``/``q``
        (LSFT vs global and vs kNN, for r and L2; q = Benjamini–Hochberg across the rows of this table);
        further metric families; ``Test Perturbations`` (perturbation rows in the test set, summed over
        seeds), ``Undefined (<family>)``; ``Genes``; ``Synthetic Stand-in``.
    """
    settings = stats or StatsSettings()
    pooled = seed is None
    rows = _select(df, seed, test_set)
    families = _table_families(df, top_genes)
    records = []
    for (baseline, pct), grp in rows.groupby(["baseline", "top_pct"], sort=True):
        records.append({"Baseline": baseline, "Top %": _pct(pct), **_row(grp, families, settings, top_genes, pooled)})
    table = _add_qvalues(pd.DataFrame.from_records(records, columns=None if records else ["Baseline", "Top %"]))
    if "Train Size" in table.columns:
        table["Train Size"] = table["Train Size"].astype(int)
    return _order(table, _layout(families, top_genes, pooled), ["Baseline", "Top %"])


def _seeds_text(seeds: Iterable[int]) -> str:
    return ", ".join(str(int(s)) for s in sorted(set(seeds)))


def _test_set_text(df: pd.DataFrame, seed: int | None, test_set: str) -> str:
    """The test set and its size per seed, in words."""
    if test_set == "per_baseline":
        return ("each baseline over every test perturbation it can predict "
                "(sizes differ between baselines; see Test Perturbations)")
    sizes = common_test_set(df).groupby("seed").size()
    if seed is not None:
        sizes = sizes[sizes.index == seed]
    n_all = df.groupby("seed")["condition"].nunique()
    per_seed = ", ".join(f"{n} of {n_all[s]} (seed {s})" for s, n in sizes.items())
    return f"the common test set, perturbations every baseline can predict: {per_seed}"


def _scope_text(df: pd.DataFrame, seed: int | None) -> str:
    if seed is not None:
        return f"split seed {seed}"
    seeds = sorted(set(df["seed"]))
    if len(seeds) == 1:
        return f"split seed {seeds[0]} (the only seed)"
    return (f"pooled over split seeds {_seeds_text(seeds)}: mean of the per-seed means, `SD (seeds)` across seeds, "
            "CIs from a bootstrap resampling within each seed, tests on per-perturbation differences averaged over "
            "the seeds in which a perturbation is tested")


def performance_note(
    df: pd.DataFrame,
    dataset: str,
    protocol: str = "default",
    seed: int | None = None,
    test_set: str = "common",
    stats: StatsSettings | None = None,
    top_genes: int = 1000,
    exclude_target_gene: bool = False,
) -> str:
    """The Markdown note of a performance table: protocol, seeds, test set and its size, how to read cells."""
    settings = stats or StatsSettings()
    conf = f"{100 * settings.confidence:g}"
    lines = [
        f"**Protocol: {protocol_label(protocol)}**",
        "",
        f"Dataset `{dataset}`, {_scope_text(df, seed)}. Means over {_test_set_text(df, seed, test_set)}.",
        f"Cells read `mean [low, high]`: {conf} % percentile-bootstrap interval over test perturbations "
        f"({settings.n_resamples} resamples, seed {settings.seed}); improvement intervals are paired (the bootstrap of "
        "the per-perturbation differences). Improvement > 0 means LSFT (or kNN) beats the global fit (`Global`; the "
        "CSV keeps the LSFT note's `Baseline <metric>` column names).",
        "p: two-sided Wilcoxon signed-rank test on the paired per-perturbation differences (zero differences dropped; "
        "1 when all differences are zero); q: Benjamini-Hochberg across all rows of this table, per p column.",
        "A perturbation whose local, kNN or global value of a metric is undefined (e.g. Pearson r of a constant "
        "vector) is left out of every mean of that metric in its row and counted in `Undefined (...)`.",
    ]
    if _omit_top(df, top_genes):
        lines.append(f"The top-{top_genes}-gene columns are omitted: no baseline has more than {top_genes} genes on "
                     f"this dataset, so they would equal the all-gene columns.")
    lines.append(target_gene_note(exclude_target_gene))
    return "\n".join(lines)


def rank_note(mode_collapse_spread: float) -> str:
    """The note lines on the MAE, discrimination, rank and spread columns and ``Mode Collapse`` of a performance table."""
    return (
        "MAE: mean absolute error over genes (cell-eval's mae). Discrimination (L1): cell-eval's discrimination "
        "score (the Virtual Cell Challenge's PDS), 1 when each prediction is closer to its own observation than to "
        "any other (target gene left out). Rank (lower is better): PerturBench's rank, 0 when each prediction is "
        "closest to its own observation, 0.5 for random.\n"
        f"`Spread`: mean distance between the method's predictions over mean distance between the observations "
        f"(common test set; pooled: mean over seeds). `Mode Collapse` names the methods whose spread is below "
        f"{mode_collapse_spread:g} (metrics.mode_collapse_spread): they predict nearly the same response for every "
        f"perturbation. Ranks near 0.5 alone do not flag: on hard data every method's rank is near 0.5."
    )


def gene_set_note(genes: tuple[int, int] | None, exclude_target_gene: bool = False) -> str:
    """The line of a table that puts methods side by side: the one gene set they are all scored on (SPEC 7)."""
    if genes is None:
        return ""
    n, measured = genes
    which = ("every measured gene" if n == measured else
             f"the genes every compared method predicts ({n} of the dataset's {measured} measured genes: a gene-table "
             "baseline predicts fewer; its own-gene numbers are in the per-baseline tables)")
    target = "; each perturbation's own target gene(s) left out" if exclude_target_gene else ""
    return f"Genes: every method and every bound here is scored on the same {n} genes, {which}{target}."


def progress_note(pooled: bool = False, exclude_target_gene: bool = False, genes: tuple[int, int] | None = None) -> str:
    """The note of a progress-bar table (:func:`lsftbench.evaluation.progress_bar.progress_bar_table`); ``genes`` is
    (the genes scored, the dataset's measured genes)."""
    note = (
        "How much of the gap from the worst acceptable (WAP: best null method) to the best achievable performance "
        "(BAP: the tighter of the idealized baseline, which USES TEST DATA on purpose, and the sampling-noise "
        "ceiling; the discrimination score has no noise ceiling, its BAP is the idealized baseline's) each method "
        "closes: % of gap closed = (score - WAP) / (BAP - WAP); for L2 and MAE (lower is better) the same on "
        "-score. Per metric every score and bound is the mean over the same perturbations (`Perturbations`): the "
        "common test set's, less any where a compared method's value is undefined.\n"
        "Sampling-noise ceiling: what a perfect model (the true mean change) is expected to score against the observed "
        "change, from random disjoint halves of each test perturbation's cells (Spearman-Brown for correlations, the "
        "scaled half difference for L2 and MAE); perturbations with fewer than 4 cells are left out of it. The noise of "
        "the control mean is ignored. cell-eval's --ceiling and the Virtual Cell Challenge's replicate score report "
        "the halves' agreement with each other (the reliability, in noise_ceiling.parquet); this ceiling is its "
        "square root for correlations."
    )
    if pooled:
        note += ("\nPooled: every number is the mean of its per-seed values (the % of gap closed too, the same numbers "
                 "its SD is over); the counts are summed over the seeds.")
    lines = [note, gene_set_note(genes, exclude_target_gene), target_gene_note(exclude_target_gene)]
    return "\n".join(line for line in lines if line)


# ---------------------------------------------------------------------------------------------------
# DE-gene metrics and the other discrimination scores


def de_metrics_table(
    df: pd.DataFrame,
    seed: int | None = None,
    test_set: str = "common",
    stats: StatsSettings | None = None,
    top_genes: int = 1000,
) -> pd.DataFrame:
    """The metrics that do not fit ``lsft_performance``, one row per (baseline, K, metric) (long format).

    The discrimination scores with L2 and cosine distances and the DE-gene metrics of SPEC 7.2, each
    with ``Local``, ``Global`` (the global fit) and ``kNN`` means, the improvements over the global fit,
    CIs and pooling exactly as :func:`performance_table` (same rows, same test set; a perturbation whose
    metric is undefined — e.g. fewer than 3 DE genes — is left out of that metric's means and counted).
    """
    settings = stats or StatsSettings()
    pooled = seed is None
    rows = _select(df, seed, test_set)
    families = _table_families(df, top_genes, "de")
    records = []
    for (baseline, pct), grp in rows.groupby(["baseline", "top_pct"], sort=True):
        for f, fam in zip(families, row_statistics(grp, [_spec(f, grp) for f in families], settings, p_values=False,
                                                   fractions=False)):
            rec: dict[str, object] = {"Baseline": baseline, "Top %": _pct(pct), "Metric": f.label}
            for method, est in fam.means.items():  # long format: the row's "Baseline" is the baseline's name
                _put(rec, "Global" if method == "global" else _METHODS[method], est, pooled)
            for method, est in fam.improvement.items():
                _put(rec, "kNN Improvement" if method == "knn" else "Improvement", est, pooled)
            rec["Perturbations"], rec["Undefined"] = fam.n_used, fam.n_undefined
            records.append(rec)
    table = pd.DataFrame.from_records(records, columns=None if records else ["Baseline", "Top %", "Metric"])
    if pooled and len(table):
        table["Seeds"] = rows["seed"].nunique()
    return _order(table, _with_ci(["Local", "Global", "kNN", "Improvement", "kNN Improvement"], pooled),
                  ["Baseline", "Top %", "Metric"])


def de_note(
    df: pd.DataFrame,
    dataset: str,
    protocol: str = "default",
    seed: int | None = None,
    test_set: str = "common",
    stats: StatsSettings | None = None,
    de_fdr: float = 0.05,
    gears_source: str = "smallest p",
    exclude_target_gene: bool = False,
    de_test: str = "welch",
) -> str:
    """The Markdown note of the ``de_metrics`` table; ``de_test`` names the DE test (``metrics.de_test``)."""
    settings = stats or StatsSettings()
    gears = ("GEARS's own `uns[\"top_non_dropout_de_20\"]` of the data file" if gears_source == "uns"
             else "the 20 genes of smallest p of the test below (the data file has no GEARS DE genes)")
    return "\n".join([
        f"**Protocol: {protocol_label(protocol)}**",
        "",
        f"Dataset `{dataset}`, {_scope_text(df, seed)}. Means over {_test_set_text(df, seed, test_set)}; cells "
        f"`mean [low, high]` with the {100 * settings.confidence:g} % bootstrap interval, as in `lsft_performance`.",
        "Discrimination (L2, cosine): cell-eval's discrimination score with those distances (L1 is in "
        "`lsft_performance`); 1 when every prediction is closer to its own observation than to any other.",
        f"DE genes (SPEC 7.2): {_DE_TESTS[de_test]} of each perturbation's cells against the ctrl cells "
        f"(metrics.de_test: {de_test}), Benjamini-Hochberg within the perturbation, DE set = q < {de_fdr:g} (metrics.de_fdr). `DE overlap`: share of the DE set among "
        "as many genes of largest |predicted change| (cell-eval's overlap_at_N); `DE top N`: the same for the N "
        "DE genes of smallest p; `DE direction`: share of the DE set predicted with the observed sign; "
        "`DE Spearman`: over the DE set. Undefined (left out, counted) when a perturbation has fewer than 3 DE genes.",
        f"`Pearson r, DE genes` and `MSE, DE genes`: GEARS's pearson_de_delta and mse_de, over {gears}.",
        target_gene_note(exclude_target_gene),
    ])


def target_gene_note(exclude_target_gene: bool) -> str:
    """The line every table note carries about the perturbed gene's own row (SPEC 7)."""
    if exclude_target_gene:
        return ("Target gene: EXCLUDED (metrics.exclude_target_gene: true, the Virtual Cell Challenge 2026 convention): "
                "each perturbation's own target gene(s) are left out of every one of its metrics.")
    return ("Target gene: included (metrics.exclude_target_gene: false, as in the paper), except in the discrimination "
            "scores, which leave it out as cell-eval does.")


# ---------------------------------------------------------------------------------------------------
# Fraction improved


def fraction_improved_table(
    df: pd.DataFrame, seed: int | None = None, test_set: str = "common", stats: StatsSettings | None = None
) -> pd.DataFrame:
    """Table 2: share of test perturbations where LSFT (or kNN) beats the global fit, with Wilson CIs.

    Over the same perturbations as :func:`performance_table` (test set, defined metrics). Pooled over
    seeds (``seed=None``), a perturbation tested in several seeds is one unit with its improvement
    averaged over those seeds. ``Perturbations Counted (<family>)`` is the Wilson ``n``.
    """
    settings = stats or StatsSettings()
    rows = _select(df, seed, test_set)
    families = [f for f in _families(df) if f.tests]
    records = []
    for (baseline, pct), grp in rows.groupby(["baseline", "top_pct"], sort=True):
        rec: dict[str, object] = {"Baseline": baseline, "Top %": _pct(pct)}
        specs = [_spec(f, grp) for f in families]  # families with tests only
        for f, s in zip(families, row_statistics(grp, specs, settings, intervals=False, p_values=False)):
            for method, (frac, low, high, _, n) in s.fraction.items():
                label = f"{_FRACTION[method]} ({f.label})"
                rec[label], rec[label + _CI[0]], rec[label + _CI[1]] = frac, low, high
                rec[f"Perturbations Counted ({f.key})"] = n
            rec[f"Undefined ({f.key})"] = s.n_undefined
        records.append(rec)
    table = pd.DataFrame.from_records(records, columns=None if records else ["Baseline", "Top %"])
    frac_cols = [f"{_FRACTION[m]} ({f.label})" for m in _FRACTION for f in families]
    layout = _with_ci(frac_cols, pooled=False)
    layout += [f"Perturbations Counted ({f.key})" for f in families] + [f"Undefined ({f.key})" for f in families]
    return _order(table, layout, ["Baseline", "Top %"])


def fraction_note(
    df: pd.DataFrame,
    dataset: str,
    protocol: str = "default",
    seed: int | None = None,
    test_set: str = "common",
    stats: StatsSettings | None = None,
    exclude_target_gene: bool = False,
) -> str:
    """The Markdown note of a fraction-improved table."""
    settings = stats or StatsSettings()
    pooled = seed is None and df["seed"].nunique() > 1
    unit = ("distinct perturbations (each counted once, with its improvement averaged over the seeds in which it "
            "is tested)" if pooled else "test perturbations")
    scope = f"pooled over split seeds {_seeds_text(df['seed'])}" if pooled else _scope_text(df, seed)
    return "\n".join([
        f"**Protocol: {protocol_label(protocol)}**",
        "",
        f"Dataset `{dataset}`, {scope}; test set: {_test_set_text(df, seed, test_set)}.",
        f"Share of {unit} whose LSFT (or kNN) prediction beats the global fit (improvement > 0; a tie is not an "
        f"improvement), as `percent [low, high]` with the {100 * settings.confidence:g} % Wilson score interval; "
        "`Perturbations Counted` is its denominator. Perturbations with an undefined value of the metric are left out "
        "(`Undefined`).",
        target_gene_note(exclude_target_gene),
    ])


# ---------------------------------------------------------------------------------------------------
# Summary


def protocol_label(protocol: str) -> str:
    """How a protocol is named in every table and figure; the leaking one says so."""
    return get_protocol(protocol).label


_UNDEFINED_WHY = {
    "pearson_r": "a Pearson r is undefined when the prediction or the observed change is constant over genes",
    "pearson_delta_top1000": "a Pearson r is undefined when the prediction or the observed change is constant over "
    "these genes",
    "centered_pearson_r": "a centred Pearson r is undefined when a centred vector is constant",
    "l2": "an L2 distance is undefined only when a prediction is not finite",
    "l2_top1000": "an L2 distance is undefined only when a prediction is not finite",
    "rank": ("a rank compares a perturbation with the others of its split seed's common test set, so it is "
             "undefined outside that set (or when fewer than two perturbations are scored together)"),
    "rank_transposed": ("a rank compares a perturbation with the others of its split seed's common test set, so "
                        "it is undefined outside that set (or when fewer than two perturbations are scored together)"),
}


def _coverage_rows(coverage: pd.DataFrame) -> list[tuple[str, str]]:
    rows = []
    by_seed = "seed" in coverage.columns
    for baseline, grp in coverage.groupby("baseline", sort=True):
        parts = [
            (f"seed {int(r['seed'])}: " if by_seed else "")
            + f"{int(r['n_test_predictable'])} of {int(r['n_test'])} test perturbations predictable; {int(r['n_genes'])} genes"
            for _, r in grp.sort_values("seed" if by_seed else "baseline").iterrows()
        ]
        rows.append((f"Coverage of {baseline}", "; ".join(parts)))
    return rows


def _undefined_rows(df: pd.DataFrame, top_genes: int) -> list[tuple[str, str]]:
    rows = []
    for f in _table_families(df, top_genes):
        cols = [c for c in _columns(f).values() if c in df.columns]
        bad = df[cols].isna().any(axis=1)
        name, _ = f.labels(top_genes)
        why = _UNDEFINED_WHY.get(f.name, "the metric could not be computed")
        rows.append((f"Undefined {name}", f"{int(bad.sum())} of {len(df)} perturbation rows (baseline × K × seed); {why}; "
                     "such a perturbation is left out of every mean of this metric in its table row"))
    return rows


def summary_table(
    df: pd.DataFrame,
    coverage: pd.DataFrame,
    skipped: Mapping[str, str],
    protocol: str = "default",
    unpredictable: pd.DataFrame | None = None,
    perf: pd.DataFrame | None = None,
    test_set: str = "common",
    stats: StatsSettings | None = None,
    top_genes: int = 1000,
    dropped: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Table 3: summary statistics as (Statistic, Value) rows.

    Parameters
    ----------
    df
        Per-perturbation rows (all seeds).
    coverage
        Columns ``baseline, n_test, n_test_predictable, n_genes`` and optionally ``seed``.
    skipped
        Baselines not run on this dataset → why.
    protocol
        ``default`` or ``seed_compat``.
    unpredictable
        Columns ``seed, baseline, condition, reason`` (see :func:`lsftbench.evaluation.test_sets.not_predictable_list`).
    dropped
        The same columns for the training perturbations a baseline's fit could not use.
    perf
        The pooled performance table, if already computed (else computed here).
    """
    perf = performance_table(df, None, test_set, stats, top_genes) if perf is None else perf
    common = common_test_set(df).groupby("seed").size()
    n_test = coverage.groupby("seed")["n_test"].max() if "seed" in coverage.columns else None
    rows: list[tuple[str, str]] = [("Protocol", protocol_label(protocol)), ("Split seeds", _seeds_text(df["seed"]))]
    if get_protocol(protocol).split_note:
        rows.append(("Split", get_protocol(protocol).split_note))
    common_text = "common (perturbations every baseline can predict)"
    rows.append(("Test set", common_text if test_set == "common" else "per baseline"))
    for s in sorted(set(df["seed"])):
        total = int(n_test[s]) if n_test is not None and s in n_test.index else int(coverage["n_test"].max())
        rows.append((f"Common test set (seed {s})", f"{int(common.get(s, 0))} of {total} test perturbations"))
    overall = (("Pearson r", "Improvement (r)"), ("L2", "Improvement (L2)"), ("kNN, Pearson r", "kNN Improvement (r)"))
    for label, col in overall:
        if col in perf.columns:
            rows.append((f"Overall mean improvement ({label})",
                         f"{perf[col].mean():.4f} (mean over the {len(perf)} baseline × K rows of the pooled table)"))
    if len(perf) and perf["Local Pearson r"].notna().any():
        best = perf.loc[perf["Local Pearson r"].idxmax()]
        rows.append(("Best configuration (highest local Pearson r)",
                     f"{best['Baseline']} at {best['Top %']} (local r {best['Local Pearson r']:.4f}, "
                     f"improvement {best['Improvement (r)']:.4f})"))
    else:
        rows.append(("Best configuration (highest local Pearson r)", "none"))
    rows += _coverage_rows(coverage)
    if "synthetic_stand_in" in df.columns:
        for name, parts in df.groupby("baseline", sort=True)["synthetic_stand_in"].first().items():
            if parts:
                why = f"{parts} embedding from a generated stand-in, not real model weights"
                rows.append((f"Synthetic stand-in in {name}", why))
    if unpredictable is not None:
        for _, r in not_predictable_list(unpredictable, df).iterrows():
            rows.append((f"Not predictable (seed {int(r['seed'])}): {r['condition']}", r["reasons"]))
    if dropped is not None and len(dropped):
        for (seed, cond), rows_ in dropped.groupby(["seed", "condition"], sort=True):
            why = "; ".join(f"{b}: {r}" for b, r in zip(rows_["baseline"], rows_["reason"]))
            rows.append((f"Not used for training (seed {int(seed)}): {cond}", why))
    rows += _undefined_rows(df, top_genes)
    rows += [(f"Not run: {name}", why) for name, why in skipped.items()]
    return pd.DataFrame(rows, columns=["Statistic", "Value"])


def combined_table(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every dataset's performance table (:func:`performance_table`), with a leading Dataset column.

    Each dataset keeps its own table as computed for it (its own common test set and q-values);
    columns one dataset lacks (e.g. omitted top-gene columns) are NaN for it.
    """
    tables = [t.assign(Dataset=name) for name, t in tables.items()]
    table = pd.concat(tables, ignore_index=True)
    order = [c for t in tables for c in t.columns]
    return table[["Dataset"] + list(dict.fromkeys(c for c in order if c != "Dataset"))]


def combined_note(protocol: str) -> str:
    """The Markdown note of the combined table."""
    return f"Protocol: {protocol_label(protocol)}. Split seeds pooled; each dataset on its common test set."


# ---------------------------------------------------------------------------------------------------
# Markdown


def _is_fraction(col: str) -> bool:
    return col.startswith(tuple(_FRACTION.values()))


def _fmt(col: str, value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return "NA"
        if col.startswith(("p (", "q (")) or col in ("p", "q"):
            return f"{value:.3g}"
        if col.startswith("% of gap closed"):
            return f"{value:.1f}"
        return f"{100 * value:.2f}%" if _is_fraction(col) else f"{value:.4f}"
    return "" if value is None else str(value)


def _cell(row: pd.Series, col: str, columns: set[str], interval: bool = True, sd: bool = True) -> str:
    text = _fmt(col, row[col])
    if interval and col + _CI[0] in columns and col + _CI[1] in columns:
        low, high = _fmt(col, row[col + _CI[0]]), _fmt(col, row[col + _CI[1]])
        text += f" [{low}, {high}]"
    if sd and col + _SD in columns:
        text += f" (SD {_fmt(col, row[col + _SD])})"
    return text


def _shown(columns: list[str]) -> list[str]:
    """Columns that get their own Markdown column (CI and SD columns join their value's cell)."""
    present = set(columns)
    folded = {c + t for c in columns for t in (*_CI, _SD) if c + t in present}
    return [c for c in columns if c not in folded]


def to_markdown(
    df: pd.DataFrame,
    title: str | None = None,
    note: str | None = None,
    columns: Sequence[str] | None = None,
    rename: Mapping[str, str] | None = None,
    plain: Iterable[str] = (),
    sd: bool = True,
    footer: str | None = None,
) -> str:
    """Render a table as GitHub Markdown.

    A value with ``<V> CI low``/``<V> CI high`` columns becomes one cell ``0.4120 [0.3980, 0.4270]`` (and
    `` (SD 0.0100)`` when ``<V> SD (seeds)`` exists and ``sd``); floats to 4 decimals, p/q to 3 significant
    digits, fractions as percentages, integers as integers. ``columns`` chooses (and orders) the shown
    columns (absent ones are skipped; default: all), ``plain`` those shown without interval or SD,
    ``rename`` their headers; ``footer`` follows the table. The CSV keeps every separate numeric column.
    """
    present = set(df.columns)
    cols = _shown(list(df.columns)) if columns is None else [c for c in columns if c in present]
    plain, rename = set(plain), dict(rename or {})
    lines = [f"## {title}", ""] if title else []
    if note:
        lines += [note, ""]
    lines.append("| " + " | ".join(rename.get(c, c) for c in cols) + " |")
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(_cell(row, c, present, c not in plain, sd and c not in plain) for c in cols) + " |")
    if footer:
        lines += ["", footer]
    return "\n".join(lines) + "\n"


#: Markdown headers of the performance tables: the global fit is "Global" there (the CSV keeps the LSFT
#: note's "Baseline <metric>" names, e.g. ``Baseline Pearson r``: the mapping is this prefix).
GLOBAL_HEADER = ("Baseline ", "Global ")


def _global_headers(columns: Iterable[str]) -> dict[str, str]:
    """``Baseline Pearson r`` → ``Global Pearson r`` for the value columns (not the ``Baseline`` name column)."""
    old, new = GLOBAL_HEADER
    return {c: new + c[len(old):] for c in columns if c.startswith(old)}


def _long_metrics(table: pd.DataFrame, families: Sequence[tuple[str, str]], keys: Sequence[str]) -> pd.DataFrame:
    """The performance table's further metrics in long format: one row per (keys, metric), with Local,
    Global, kNN and the improvements (each with its interval)."""
    records = []
    for _, row in table.iterrows():
        for name, key in families:
            if f"Local {name}" not in table.columns:
                continue
            rec = {k: row[k] for k in keys if k in table.columns}
            rec["Metric"] = name
            for label, col in (("Local", f"Local {name}"), ("Global", f"Baseline {name}"), ("kNN", f"kNN {name}"),
                               ("Improvement", f"Improvement ({key})"), ("kNN Improvement", f"kNN Improvement ({key})")):
                for tail in ("", *_CI):
                    if col + tail in table.columns:
                        rec[label + tail] = row[col + tail]
            undefined = f"Undefined ({key})"
            if undefined in table.columns:
                rec["Undefined"] = row[undefined]
            records.append(rec)
    return pd.DataFrame.from_records(records)


def performance_markdown(table: pd.DataFrame, title: str, note: str | None, csv_name: str, top_genes: int = 1000) -> str:
    """A performance table as a reader wants it first: the LSFT note's columns with their intervals
    (the global fit named ``Global``), kNN beside them, then its other metrics in long format; every
    column (SDs across seeds, p-values, counts) is in the CSV."""
    r, l2 = ("Pearson r", "r"), ("L2", "L2")
    main = [c for c in ("Dataset", "Protocol") if c in table.columns] + ["Baseline", "Top %"]
    for name, key in (r, l2):
        main += [f"Local {name}", f"Baseline {name}", f"kNN {name}", f"Improvement ({key})"]
    main += ["Train Size", "Mean Similarity", "q (LSFT vs global, r)", "Test Perturbations (per seed)", "Mode Collapse",
             "Synthetic Stand-in"]
    footer = (f"Every column — the SD across seeds, kNN improvements, p- and q-values, counts — is in `{csv_name}`; "
              "there, the global fit's columns keep the LSFT note's names (`Baseline Pearson r` = Global Pearson r).")
    text = to_markdown(table, title, note, columns=main, rename=_global_headers(main), sd=False, footer=footer)
    families = [f.labels(top_genes) for f in FAMILIES if f.table == "performance" and f.name not in ("pearson_r", "l2")]
    families = [(name, key) for name, key in families if f"Local {name}" in table.columns]
    keys = [c for c in ("Dataset", "Protocol", "Baseline", "Top %") if c in table.columns]
    more = _long_metrics(table, families, keys)
    if len(more):
        text += "\n" + to_markdown(
            more, "More metrics", "The same rows' other metrics (means with their intervals): centred Pearson r, "
            "MAE, the L1 discrimination score, the PerturBench ranks, and the top-gene metrics where shown.",
            sd=False,
        )
    return text


#: The columns of a progress-bar table's Markdown (the bounds' own means and the SDs are in the CSV).
_PROGRESS_VIEW = ("Protocol", "Baseline", "Top %", "Method", "Metric", "Score", "WAP", "WAP method", "BAP", "BAP method",
                  "% of gap closed", "Seeds", "Synthetic Stand-in")
#: The columns of a leaderboard's Markdown (every metric is in the CSV).
_LEADERBOARD_VIEW = ("Protocol", "Position", "Method", "Kind", "Pearson r", "% of gap closed (Pearson r)", "L2", "MAE",
                     "Discrimination (L1)", "Best linear method", "q (vs best linear (Pearson r))", "Mode Collapse", "Note")


def run_note(note: str, synthetic: Sequence[str] = (), settings: Mapping[str, Any] | None = None,
             protocol: str = "default") -> str:
    """A table note across datasets: the synthetic ones said first, the run's settings last."""
    parts = [synthetic_note(synthetic)] if synthetic else []
    parts.append(note)
    if settings is not None:
        parts.append(provenance_line(settings, f"tables/{protocol}/README.md"))
    return "\n\n".join(parts)


def synthetic_note(datasets: str | Sequence[str], real: Sequence[str] = ()) -> str:
    """The line every note of a synthetic dataset (or of several, with the ``real`` ones named) starts with."""
    names = [datasets] if isinstance(datasets, str) else list(datasets)
    listed = ", ".join(f"`{d}`" for d in names)
    many = len(names) > 1
    what = ("are the embedded generator's stand-ins for the datasets of those names" if many
            else "is the embedded generator's stand-in for the dataset of that name")
    also = f" ({', '.join(f'`{d}`' for d in real)}: real data)" if real else ""
    return f"**Synthetic data**: {listed} {what}; the numbers describe the generator, not real cells{also}."


def render_markdown(name: str, table: pd.DataFrame, title: str, note: str | None, *, top_genes: int = 1000,
                    primary: str = "Pearson r") -> str:
    """The Markdown of table ``name`` (e.g. ``lsft_performance``): the view a reader wants first, with a line
    saying which CSV holds every column."""
    csv_name = f"{name}.csv"
    if name in ("lsft_performance", "lsft_performance_per_baseline", "combined"):
        return performance_markdown(table, title, note, csv_name, top_genes)
    if name == "progress_bar":
        return to_markdown(table, title, note, columns=_PROGRESS_VIEW, plain=_PROGRESS_VIEW,
                           footer=f"The SD across seeds and every bound's own mean are in `{csv_name}`.")
    if name == "leaderboard":
        view = [c.replace("Pearson r", primary) if primary != "Pearson r" and "Pearson r" in c else c
                for c in _LEADERBOARD_VIEW]
        if primary not in ("Pearson r", "L2", "MAE", "Discrimination (L1)"):
            view.insert(view.index("L2"), "Pearson r")
        view.insert(view.index("Best linear method"), f"vs best linear ({primary})")
        view.remove("Best linear method")
        plain = [c for c in view if c not in (primary, f"vs best linear ({primary})")]
        best = str(table["Best linear method"].iloc[0]) if "Best linear method" in table and len(table) else "none"
        return to_markdown(table, title, note, columns=view, plain=plain, sd=False,
                           footer=f"Best linear method (the reference of `vs best linear`): {best}. Every metric (centred "
                                  f"r, ranks, discrimination with L2 and cosine distances, the DE metrics), its interval "
                                  f"and the counts are in `{csv_name}`.")
    if name in ("de_metrics", "model_comparisons"):
        return to_markdown(table, title, note, sd=False, footer=f"The SD across seeds is in `{csv_name}`.")
    return to_markdown(table, title, note)
