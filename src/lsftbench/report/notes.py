"""The prose notes of the tables (SPEC 7, 7.1, 7.2, 8): what a table's rows are over, which test set, genes,
target gene and DE test, and the lines every note of a run carries (protocol, synthetic data, settings).

Notes only describe; the tables' numbers are in :mod:`lsftbench.report.tables`, their Markdown in
:mod:`lsftbench.report.markdown`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from ..evaluation.de import TESTS as _DE_TESTS
from ..evaluation.statistics import StatsSettings
from ..evaluation.test_sets import common_test_set
from ..model.protocol import get_protocol
from ..pipeline.provenance import provenance_line

__all__ = [
    "protocol_label",
    "performance_note",
    "subgroup_note",
    "subgroup_comparison_note",
    "missing_subgroups",
    "rank_note",
    "progress_note",
    "fraction_note",
    "de_note",
    "target_gene_note",
    "gene_set_note",
    "combined_note",
    "synthetic_note",
    "run_note",
    "seeds_text",
    "omit_top_genes",
]



def seeds_text(seeds: Iterable[int]) -> str:
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
    return (f"pooled over split seeds {seeds_text(seeds)}: mean of the per-seed means, `SD (seeds)` across seeds, "
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
    if omit_top_genes(df, top_genes):
        lines.append(f"The top-{top_genes}-gene columns are omitted: no baseline has more than {top_genes} genes on "
                     f"this dataset, so they would equal the all-gene columns.")
    lines.append(target_gene_note(exclude_target_gene))
    return "\n".join(lines)


def subgroup_note(df: pd.DataFrame, seed: int | None = None) -> str:
    """The lines of ``lsft_performance_by_subgroup`` on its rows: subgroups, their sizes per seed, the q family, and
    the columns it does not have."""
    common = common_test_set(df)
    groups = _subgroup_sizes(common if seed is None else common[common["seed"] == seed], df)
    return (
        "Rows per test subgroup (SPEC 10, GEARS's names: `combo_seen0/1/2` = doubles with 0, 1 or 2 genes perturbed "
        "alone in training, `unseen_single` = a single whose gene is not; under the paper's doubles split every test "
        f"double is `combo_seen2`), after the `all` rows (every test perturbation, = `lsft_performance`). Test "
        f"perturbations of the common test set per subgroup: {groups}. Each subgroup's means, intervals and tests are "
        "over its own perturbations (a pooled subgroup over the seeds that test it, `Seeds`); q: Benjamini-Hochberg "
        "across the rows of one subgroup, per p column. Ranks and discrimination scores are each perturbation's "
        "within its seed's whole common test set, averaged over the subgroup; the spreads and `Mode Collapse` are "
        "whole-test-set numbers and only in `lsft_performance`."
    ) + _sentence(missing_subgroups(df, seed))


def missing_subgroups(df: pd.DataFrame, seed: int | None = None) -> str:
    """The note's sentence on the test subgroups of the split that the common test set lacks, and the baselines that
    predict none of their perturbations (e.g. ``additive``, which predicts only doubles whose singles both train:
    under GEARS's simulation split the common test set is then ``combo_seen2`` alone); "" when none is missing."""
    rows = df if seed is None else df[df["seed"] == seed]
    named = rows.assign(subgroup=rows["subgroup"].fillna("").astype(str))
    common = common_test_set(named).merge(named[["seed", "condition", "subgroup"]].drop_duplicates(),
                                          on=["seed", "condition"])
    missing = sorted(set(named["subgroup"]) - set(common["subgroup"]) - {""})
    if not missing:
        return ""
    baselines = list(dict.fromkeys(named["baseline"]))
    parts = []
    for group in missing:
        have = set(named.loc[named["subgroup"] == group, "baseline"])
        lacking = [b for b in baselines if b not in have]
        parts.append(f"`{group}` (" + (f"not predicted by {', '.join(f'`{b}`' for b in lacking)}" if lacking else
                                        "no perturbation predicted by every baseline") + ")")
    return ("Test subgroups of the split not in the common test set, so not in these rows: " + "; ".join(parts)
            + ". Run without those baselines for their rows.")


def subgroup_comparison_note(comparison: pd.DataFrame, df: pd.DataFrame) -> str:
    """The lines of ``progress_bar_by_subgroup`` and ``leaderboard_by_subgroup``: the subgroups and the size of each
    in every seed's common test set of the comparison frame (``comparison``; ``df`` the per-perturbation rows that
    carry the subgroups)."""
    groups = _subgroup_sizes(comparison[["seed", "condition"]].drop_duplicates(), df)
    return (
        "Rows per test subgroup (SPEC 10, GEARS's names: `combo_seen0/1/2` = doubles with 0, 1 or 2 genes perturbed "
        "alone in training, `unseen_single` = a single whose gene is not); the whole test set's rows are "
        "`progress_bar` and `leaderboard`. Test perturbations of the common test set (every "
        f"baseline and every model of one's own predicts them) per subgroup: {groups}. Each subgroup's scores, WAP, "
        "BAP, intervals and tests are over its own perturbations (a pooled subgroup over the seeds that test it); the "
        "spreads and `Mode Collapse` are whole-test-set numbers, in `leaderboard` only."
    ) + _sentence(missing_subgroups(df))


def _subgroup_sizes(tested: pd.DataFrame, df: pd.DataFrame) -> str:
    """``"`combo_seen1`: 7 (seed 1), 9 (seed 2); …"``: the test perturbations (``seed, condition`` of ``tested``)
    per subgroup and seed, the subgroups from the per-perturbation rows ``df``."""
    tested = tested.merge(df[["seed", "condition", "subgroup"]].drop_duplicates(["seed", "condition"]),
                          on=["seed", "condition"], how="left")
    sizes = tested.assign(subgroup=tested["subgroup"].fillna("").astype(str)).groupby(["subgroup", "seed"]).size()
    return "; ".join(
        f"`{group}`: " + ", ".join(f"{n} (seed {s})" for s, n in sizes[group].items())
        for group in sorted(set(sizes.index.get_level_values(0)) - {""})
    ) or "none"


def _sentence(text: str) -> str:
    return f" {text}" if text else ""


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
    scope = f"pooled over split seeds {seeds_text(df['seed'])}" if pooled else _scope_text(df, seed)
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


def combined_note(protocol: str) -> str:
    """The Markdown note of the combined table."""
    return f"Protocol: {protocol_label(protocol)}. Split seeds pooled; each dataset on its common test set."


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


def omit_top_genes(df: pd.DataFrame, top_genes: int) -> bool:
    """Top-gene columns equal the all-gene ones when no baseline has more than ``top_genes`` genes."""
    return "n_genes" in df.columns and len(df) > 0 and int(df["n_genes"].max()) <= top_genes
