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

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from ..evaluation.registry import METRICS, Metric
from ..evaluation.statistics import FamilySpec, FamilyStats, StatsSettings, bh_qvalues, pooled_mean, row_statistics
from ..evaluation.test_sets import common_test_set, not_predictable_list, restrict_to_test_set
from ..model.protocol import get_protocol
from .notes import omit_top_genes, protocol_label, seeds_text

__all__ = [
    "CI_SUFFIXES",
    "SD_SUFFIX",
    "FRACTION_COLUMNS",
    "FAMILIES",
    "per_perturbation",
    "performance_table",
    "subgroup_performance_table",
    "subgroup_de_metrics_table",
    "SUBGROUP_ALL",
    "fraction_improved_table",
    "de_metrics_table",
    "summary_table",
    "combined_table",
]




#: The metric families of the tables: the registry's metrics (:mod:`lsftbench.evaluation.registry`), each with
#: local, kNN and global columns ``{local,knn,global}_<name>`` in the per-perturbation frame.
FAMILIES: tuple[Metric, ...] = METRICS
_METHODS = {"local": "Local", "global": "Baseline", "knn": "kNN"}
_VS = {"global": "LSFT vs global", "knn": "LSFT vs kNN"}
FRACTION_COLUMNS = {"local": "Fraction Improved", "knn": "kNN Fraction Improved"}
CI_SUFFIXES = (" CI low", " CI high")
SD_SUFFIX = " SD (seeds)"


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


def _table_families(df: pd.DataFrame, top_genes: int, table: str = "performance") -> list[Metric]:
    omit = omit_top_genes(df, top_genes)
    return [f for f in _families(df) if f.table == table and not (f.top_genes and omit)]


def _columns(f: Metric) -> dict[str, str]:
    return {m: f"{m}_{f.name}" for m in _METHODS}


def _spec(f: Metric, rows: pd.DataFrame) -> FamilySpec:
    """The statistics' view of family ``f``: its method columns present in ``rows``."""
    return FamilySpec({m: c for m, c in _columns(f).items() if c in rows.columns}, f.higher_is_better, f.tests)


def _put(out: dict[str, object], label: str, est, pooled: bool) -> None:
    out[label] = est.mean
    out[label + CI_SUFFIXES[0]], out[label + CI_SUFFIXES[1]] = est.low, est.high
    if pooled:
        out[label + SD_SUFFIX] = est.sd


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
    tail = [*CI_SUFFIXES, SD_SUFFIX] if pooled else list(CI_SUFFIXES)
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


#: The ``Subgroup`` of the rows over every test perturbation (they equal :func:`performance_table`'s rows).
SUBGROUP_ALL = "all"


def subgroup_performance_table(
    df: pd.DataFrame,
    seed: int | None = None,
    stats: StatsSettings | None = None,
    top_genes: int = 1000,
) -> pd.DataFrame:
    """:func:`performance_table` overall and per test subgroup (SPEC 10: GEARS's subgroup names, column
    ``subgroup`` of the per-perturbation rows), stacked with a leading ``Subgroup`` column.

    The test set is the common one of the whole frame (per seed, the perturbations every baseline predicts),
    then split by subgroup, so a subgroup's rows are exactly the overall rows' perturbations of that subgroup.
    Within each subgroup the statistics are :func:`performance_table`'s (bootstrap CIs seeded by ``stats``,
    Wilcoxon tests; pooled over seeds as there); the q-values are Benjamini–Hochberg across the rows of one
    subgroup (one family per subgroup and p column, as in ``lsft_performance``), so the ``all`` rows
    (:data:`SUBGROUP_ALL`) equal ``lsft_performance``'s. A per-seed table has the subgroups of that seed; in a
    pooled table a subgroup tested in some seeds only is pooled over those (``Seeds``). Perturbations without a
    subgroup (an older run's split file) are in the ``all`` rows only.
    """
    return _by_subgroup(df, seed, lambda part: performance_table(part, seed=seed, test_set="per_baseline", stats=stats,
                                                                  top_genes=top_genes))


def subgroup_de_metrics_table(
    df: pd.DataFrame,
    seed: int | None = None,
    stats: StatsSettings | None = None,
    top_genes: int = 1000,
) -> pd.DataFrame:
    """:func:`de_metrics_table` overall and per test subgroup, stacked with a leading ``Subgroup`` column: the rows
    of :func:`subgroup_performance_table`, the DE-gene metrics (GEARS's top-20 DE genes included) and the other
    discrimination scores; the ``all`` rows equal ``de_metrics``."""
    return _by_subgroup(df, seed, lambda part: de_metrics_table(part, seed=seed, test_set="per_baseline", stats=stats,
                                                                 top_genes=top_genes))


def _by_subgroup(df: pd.DataFrame, seed: int | None, table_of) -> pd.DataFrame:
    """``table_of(rows)`` for the common test set (``all``) and for each subgroup's part of it, stacked."""
    if "subgroup" not in df.columns:
        raise ValueError("per-perturbation rows need a 'subgroup' column (the split's test subgroups)")
    rows = _select(df, seed, "common")
    parts = [(SUBGROUP_ALL, rows)]
    named = rows["subgroup"].fillna("").astype(str)
    parts += [(group, rows[named == group]) for group in sorted(set(named) - {""})]
    tables = []
    for group, part in parts:
        # the rows are already the common test set; "per_baseline" keeps them as they are
        table = table_of(part)
        table.insert(0, "Subgroup", group)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


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
                label = f"{FRACTION_COLUMNS[method]} ({f.label})"
                rec[label], rec[label + CI_SUFFIXES[0]], rec[label + CI_SUFFIXES[1]] = frac, low, high
                rec[f"Perturbations Counted ({f.key})"] = n
            rec[f"Undefined ({f.key})"] = s.n_undefined
        records.append(rec)
    table = pd.DataFrame.from_records(records, columns=None if records else ["Baseline", "Top %"])
    frac_cols = [f"{FRACTION_COLUMNS[m]} ({f.label})" for m in FRACTION_COLUMNS for f in families]
    layout = _with_ci(frac_cols, pooled=False)
    layout += [f"Perturbations Counted ({f.key})" for f in families] + [f"Undefined ({f.key})" for f in families]
    return _order(table, layout, ["Baseline", "Top %"])


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
    rows: list[tuple[str, str]] = [("Protocol", protocol_label(protocol)), ("Split seeds", seeds_text(df["seed"]))]
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
