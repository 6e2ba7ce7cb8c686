"""Every table of one (dataset, protocol): per split seed and pooled over seeds (rule ``dataset_tables``).

Reads the fits, LSFT shards, progress-bar methods and the noise ceiling back
(:func:`lsftbench.report.aggregate.dataset_frames`), builds the tables of :mod:`lsftbench.report.tables`
with their notes and writes each as CSV (numeric columns) and Markdown (CI cells).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..evaluation.de import DEResults
from ..evaluation.registry import PROGRESS_METRICS
from ..evaluation.statistics import StatsSettings
from ..io import read_parquet, write_csv, write_parquet, write_text
from ..pipeline.provenance import provenance_items, provenance_line
from .aggregate import (
    ComparisonSettings,
    DatasetFrames,
    add_spread,
    check_ceiling_genes,
    dataset_frames,
    progress_tables,
)
from .leaderboard import leaderboard_note, leaderboard_table, metric_label, model_comparisons, model_comparisons_note
from .markdown import render_markdown
from .notes import (
    de_note,
    fraction_note,
    performance_note,
    progress_note,
    rank_note,
    subgroup_comparison_note,
    subgroup_note,
    synthetic_note,
)
from .tables import (
    de_metrics_table,
    fraction_improved_table,
    performance_table,
    subgroup_de_metrics_table,
    subgroup_performance_table,
    summary_table,
)

__all__ = [
    "DatasetTableSettings", "SUBGROUP_TABLE", "SUBGROUP_DE_TABLE", "SUBGROUP_PROGRESS_TABLE", "SUBGROUP_LEADERBOARD_TABLE",
    "write_dataset_tables", "write_subgroup_tables", "subgroup_comparison_tables", "write_table",
]

#: The performance tables: file name → (test set, title suffix).
_PERFORMANCE = {
    "lsft_performance": ("common", ""),
    "lsft_performance_per_baseline": ("per_baseline", " (per-baseline test sets)"),
}
#: The per-subgroup tables of a dataset with double perturbations (SPEC 10; rule ``subgroup_tables``).
SUBGROUP_TABLE = "lsft_performance_by_subgroup"
SUBGROUP_DE_TABLE = "de_metrics_by_subgroup"
SUBGROUP_PROGRESS_TABLE = "progress_bar_by_subgroup"
SUBGROUP_LEADERBOARD_TABLE = "leaderboard_by_subgroup"


@dataclass(frozen=True)
class DatasetTableSettings:
    """The config values the tables of a dataset depend on."""

    dataset: str
    protocol: str
    seeds: Sequence[int]
    stats: StatsSettings
    top_genes: int = 1000
    rank_distance: str = "l2"
    mode_collapse_spread: float = 0.1
    exclude_target_gene: bool = False
    de_fdr: float = 0.05
    skipped: Mapping[str, str] | None = None
    primary_metric: str = "pearson_r"
    synthetic: bool = False
    #: The run's settings (:func:`lsftbench.pipeline.settings.table_settings`), stated under every table.
    run_settings: Mapping[str, Any] | None = None

    @classmethod
    def from_params(cls, dataset: str, protocol: str, params: Any) -> DatasetTableSettings:
        """From the rule's ``params``: ``seeds``, ``statistics``, ``skipped``, ``metrics`` (the config section),
        ``primary_metric``, ``synthetic`` and ``settings`` (the run's settings)."""
        m = params.metrics
        return cls(dataset, protocol, list(params.seeds), StatsSettings.from_config(params.statistics),
                   m["top_genes"], m["rank_distance"], m["mode_collapse_spread"], m["exclude_target_gene"], m["de_fdr"],
                   dict(params.skipped), params.primary_metric, bool(params.synthetic), dict(params.settings))

    @property
    def comparison(self) -> ComparisonSettings:
        return ComparisonSettings(self.rank_distance, self.exclude_target_gene, self.de_fdr, self.top_genes)

    @property
    def progress_metrics(self) -> tuple[str, ...]:
        """The progress bar's metrics: :data:`PROGRESS_METRICS` and the leaderboard's primary metric (its % of gap
        closed comes from the progress bar)."""
        return tuple(dict.fromkeys([*PROGRESS_METRICS, self.primary_metric]))


def write_table(table: pd.DataFrame, note: str | None, title: str, root: str | os.PathLike[str], name: str,
                s: DatasetTableSettings) -> None:
    """One table as CSV (numeric columns) and Markdown (the view a reader wants first, with CI cells).

    A protocol other than the default says so in both; a synthetic dataset says so in the Markdown's note, which
    ends with the settings the table was made with.
    """
    if s.protocol != "default":
        table = table.copy()
        table.insert(0, "Protocol", s.protocol)
    if s.synthetic:
        note = synthetic_note(s.dataset) + ("\n\n" + note if note else "")
    if s.run_settings is not None:
        note = (note + "\n\n" if note else "") + provenance_line(s.run_settings, f"tables/{s.protocol}/README.md")
    write_csv(table, f"{root}/{name}.csv")
    text = render_markdown(name, table, title, note, top_genes=s.top_genes, primary=metric_label(s.primary_metric))
    write_text(text, f"{root}/{name}.md")


def _performance_tables(
    frames: DatasetFrames, root: str, seed: int | None, s: DatasetTableSettings, gears_source: str,
    de_test: str = "welch",
) -> dict[str, pd.DataFrame]:
    """The performance tables (common and per-baseline test sets), the fraction improved and the DE metrics
    of one seed or pooled."""
    df = frames.per_perturbation
    context = dict(dataset=s.dataset, protocol=s.protocol, stats=s.stats, exclude_target_gene=s.exclude_target_gene)
    tables = {}
    for name, (test_set, suffix) in _PERFORMANCE.items():
        table = performance_table(df, seed=seed, test_set=test_set, stats=s.stats, top_genes=s.top_genes)
        if test_set == "common":  # the spread is over the common test set, as the ranks are
            table = add_spread(table, frames.spread, seed, s.mode_collapse_spread)
        tables[name] = table
        note = performance_note(df, seed=seed, test_set=test_set, top_genes=s.top_genes, **context)
        note += "\n" + rank_note(s.mode_collapse_spread)
        write_table(table, note, f"Performance by baseline and top %{suffix} ({s.dataset})", root, name, s)
    frac = fraction_improved_table(df, seed=seed, stats=s.stats)
    write_table(frac, fraction_note(df, seed=seed, **context), f"Fraction of perturbations improved ({s.dataset})",
                root, "fraction_improved", s)
    de = de_metrics_table(df, seed=seed, stats=s.stats, top_genes=s.top_genes)
    write_table(de, de_note(df, seed=seed, de_fdr=s.de_fdr, gears_source=gears_source, de_test=de_test, **context),
                f"DE genes and discrimination by baseline and top % ({s.dataset})", root, "de_metrics", s)
    return tables


def write_dataset_tables(
    inputs: Mapping[str, Any], per_perturbation: str | os.PathLike[str], settings: DatasetTableSettings
) -> DatasetFrames:
    """Write every table of one (dataset, protocol) into the folder of ``per_perturbation``.

    ``inputs`` are the rule's inputs by name: ``global_metrics``, ``global_predictions``, ``lsft``
    (shard tables), ``progress_methods`` (the null methods' predictions, one per seed, in ``settings.seeds``
    order), ``noise_ceiling``, ``de`` (the dataset's differential expression) and ``model_metrics`` /
    ``model_predictions`` (the models of one's own). Returns what the tables were made from (for the log).
    """
    s = settings
    de = DEResults.load(inputs["de"])
    frames = dataset_frames(inputs["global_metrics"], inputs["global_predictions"], inputs["lsft"], s.comparison, de,
                            inputs.get("model_metrics", ()), inputs.get("model_predictions", ()),
                            dict(zip(s.seeds, inputs["progress_methods"], strict=True)))
    df = frames.per_perturbation
    root = str(Path(per_perturbation).parent)
    for seed in s.seeds:
        _performance_tables(frames, f"{root}/seed{seed}", seed, s, de.gears_source, de.test)
    pooled = _performance_tables(frames, root, None, s, de.gears_source, de.test)
    ceiling = read_parquet(inputs["noise_ceiling"])
    check_ceiling_genes(ceiling, frames.comparison_genes, inputs["noise_ceiling"])
    stand_in = df.groupby("baseline")["synthetic_stand_in"].first().fillna("") if "synthetic_stand_in" in df else None
    progress, pooled_progress = progress_tables(frames.comparison, ceiling, s.progress_metrics, stand_in)
    genes = (len(frames.comparison_genes), frames.n_measured)
    for table in (*progress.values(), pooled_progress):
        table["Genes"] = genes[0]
    for seed, table in progress.items():
        write_table(table, progress_note(exclude_target_gene=s.exclude_target_gene, genes=genes),
                    f"Progress bar, split seed {seed} ({s.dataset})", f"{root}/seed{seed}", "progress_bar", s)
    write_table(pooled_progress, progress_note(pooled=True, exclude_target_gene=s.exclude_target_gene, genes=genes),
                f"Progress bar ({s.dataset})", root, "progress_bar", s)
    summary = summary_table(
        df, frames.coverage, s.skipped or {}, s.protocol, unpredictable=frames.unpredictable,
        perf=pooled["lsft_performance"], stats=s.stats, top_genes=s.top_genes,
        dropped=frames.dropped_training,
    )
    if s.synthetic:
        summary.loc[len(summary)] = ("Data", f"synthetic: {s.dataset} is the embedded generator's stand-in, not real cells")
    if s.run_settings is not None:
        for name, value in capped_dims(frames.dims, int(s.run_settings["pca_dim"])):
            summary.loc[len(summary)] = (name, value)
        for name, value in provenance_items(s.run_settings):
            summary.loc[len(summary)] = (f"Setting: {name}", value)
    write_table(summary, None, f"Summary statistics ({s.dataset})", root, "summary", s)
    _leaderboards(frames, progress, root, s)
    write_parquet(df, per_perturbation)
    return frames


def write_subgroup_tables(
    per_perturbation: str | os.PathLike[str], settings: DatasetTableSettings, de: str | os.PathLike[str] | None = None,
    per_method: str | os.PathLike[str] | None = None, ceiling: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Write :data:`SUBGROUP_TABLE` and :data:`SUBGROUP_DE_TABLE` (overall and per test subgroup, SPEC 10) pooled and
    per seed into the folder of ``per_perturbation`` (the per-perturbation rows :func:`write_dataset_tables` wrote);
    ``de`` is the dataset's differential expression (its test and GEARS DE genes are named in the DE table's note).
    With ``per_method`` (every method's rows on the comparison genes, written beside ``per_perturbation``) and
    ``ceiling`` (the noise ceiling), also :data:`SUBGROUP_PROGRESS_TABLE` and :data:`SUBGROUP_LEADERBOARD_TABLE`
    (:func:`subgroup_comparison_tables`: models of one's own, null methods and bounds included).
    Returns the pooled performance table."""
    s = settings
    df = read_parquet(per_perturbation)
    results = DEResults.load(de) if de is not None else None
    gears_source, de_test = (results.gears_source, results.test) if results is not None else ("smallest p", "welch")
    root = str(Path(per_perturbation).parent)
    context = dict(dataset=s.dataset, protocol=s.protocol, stats=s.stats, exclude_target_gene=s.exclude_target_gene)
    pooled = None
    for seed in (*s.seeds, None):
        where = root if seed is None else f"{root}/seed{seed}"
        groups = subgroup_note(df, seed)
        table = subgroup_performance_table(df, seed=seed, stats=s.stats, top_genes=s.top_genes)
        note = performance_note(df, seed=seed, test_set="common", top_genes=s.top_genes, **context) + "\n" + groups
        write_table(table, note, f"Performance by test subgroup, baseline and top % ({s.dataset})", where,
                    SUBGROUP_TABLE, s)
        de_table = subgroup_de_metrics_table(df, seed=seed, stats=s.stats, top_genes=s.top_genes)
        note = de_note(df, seed=seed, de_fdr=s.de_fdr, gears_source=gears_source, de_test=de_test, **context)
        write_table(de_table, note + "\n" + groups,
                    f"DE genes and discrimination by test subgroup, baseline and top % ({s.dataset})", where,
                    SUBGROUP_DE_TABLE, s)
        pooled = table
    if per_method is not None and ceiling is not None:
        _write_subgroup_comparisons(df, per_method, ceiling, results, root, s)
    return pooled


def subgroup_comparison_tables(
    comparison: pd.DataFrame,
    ceiling: pd.DataFrame | None,
    subgroups: pd.DataFrame,
    settings: DatasetTableSettings,
    stand_in: Mapping[str, str] | None = None,
    n_genes: int | None = None,
) -> tuple[dict[int | None, pd.DataFrame], dict[int | None, pd.DataFrame]]:
    """The progress bar and the leaderboard per test subgroup (SPEC 10), per seed and pooled (key ``None``), each
    stacked with a leading ``Subgroup`` column (no ``all`` block: the whole test set's are ``progress_bar`` and
    ``leaderboard``).

    ``comparison`` is the comparison frame (every method on the comparison genes over each seed's common test set:
    models of one's own, global fits, LSFT, kNN, null methods and the idealized baseline), ``subgroups`` maps
    ``seed, condition`` to ``subgroup``. A subgroup's tables are exactly :func:`progress_tables` and
    :func:`leaderboard_table` of the frame's rows of that subgroup's perturbations (WAP and BAP recomputed on them,
    the leaderboard's bootstrap seeded as the leaderboard's), without the spread columns (mode collapse is a
    whole-test-set property). A per-seed table has the subgroups of that seed; a pooled subgroup is over the seeds
    that test it (``Seeds``).
    """
    s = settings
    named = subgroups.assign(subgroup=subgroups["subgroup"].fillna("").astype(str))
    named = named.drop_duplicates(["seed", "condition"]).set_index(["seed", "condition"])["subgroup"]
    keys = pd.MultiIndex.from_arrays([comparison["seed"].astype(int), comparison["condition"]])
    group_of = named.reindex(keys).fillna("").to_numpy()
    parts = [(group, comparison[group_of == group]) for group in sorted(set(group_of) - {""})]
    progress_out: dict[int | None, list[pd.DataFrame]] = {}
    leaderboard_out: dict[int | None, list[pd.DataFrame]] = {}
    for group, frame in parts:
        progress, pooled_progress = progress_tables(frame, ceiling, s.progress_metrics, stand_in)
        for seed in (*s.seeds, None):
            if seed is not None and seed not in progress:
                continue
            bar = (pooled_progress if seed is None else progress[seed]).copy()
            if n_genes is not None:
                bar["Genes"] = n_genes
            bar.insert(0, "Subgroup", group)
            progress_out.setdefault(seed, []).append(bar)
            board = leaderboard_table(frame, progress, s.primary_metric, s.stats, seed, None, s.mode_collapse_spread,
                                      n_genes=n_genes)
            board.insert(0, "Subgroup", group)
            leaderboard_out.setdefault(seed, []).append(board)
    return ({k: pd.concat(v, ignore_index=True) for k, v in progress_out.items()},
            {k: pd.concat(v, ignore_index=True) for k, v in leaderboard_out.items()})


def _write_subgroup_comparisons(
    df: pd.DataFrame, per_method: str | os.PathLike[str], ceiling_path: str | os.PathLike[str],
    de: DEResults | None, root: str, s: DatasetTableSettings,
) -> None:
    """:data:`SUBGROUP_PROGRESS_TABLE` and :data:`SUBGROUP_LEADERBOARD_TABLE`, pooled and per seed."""
    comparison = read_parquet(per_method)
    ceiling = read_parquet(ceiling_path)
    n_genes = int(ceiling["n_genes"].iloc[0])
    genes = (n_genes, len(de.genes) if de is not None else n_genes)
    stand_in = df.groupby("baseline")["synthetic_stand_in"].first().fillna("") if "synthetic_stand_in" in df else None
    progress, boards = subgroup_comparison_tables(comparison, ceiling, df[["seed", "condition", "subgroup"]], s,
                                                  stand_in, n_genes)
    groups = subgroup_comparison_note(comparison, df)
    for seed in (*s.seeds, None):
        if seed not in progress:
            continue
        where = root if seed is None else f"{root}/seed{seed}"
        suffix = "" if seed is None else f", split seed {seed}"
        note = progress_note(pooled=seed is None, exclude_target_gene=s.exclude_target_gene, genes=genes)
        write_table(progress[seed], note + "\n" + groups, f"Progress bar by test subgroup ({s.dataset}){suffix}", where,
                    SUBGROUP_PROGRESS_TABLE, s)
        seeds = list(s.seeds) if seed is None else [seed]
        note = leaderboard_note(s.dataset, s.primary_metric, seeds, seed is None, s.stats.confidence, genes,
                                s.exclude_target_gene)
        write_table(boards[seed], note + "\n" + groups, f"Leaderboard by test subgroup ({s.dataset}){suffix}", where,
                    SUBGROUP_LEADERBOARD_TABLE, s)


def capped_dims(dims: pd.DataFrame | None, pca_dim: int) -> list[tuple[str, str]]:
    """Summary rows for the baselines whose ridge embeddings have fewer dimensions than ``pca_dim`` (a PCA has at
    most as many components as the training data's rank), per seed."""
    if dims is None or not len(dims):
        return []
    rows = []
    ridge = dims[(dims["model"] == "ridge") & ((dims["gene"] < pca_dim) | (dims["pert"] < pca_dim))]
    for seed, group in ridge.groupby("seed", sort=True):
        text = "; ".join(f"{r.baseline}: gene {r.gene}, perturbation {r.pert}" for r in group.itertuples())
        rows.append((f"Embedding dimension below pca_dim = {pca_dim} (seed {int(seed)})",
                     f"{text} (a PCA or table has no more components than the training data's rank or its columns)"))
    return rows


def _leaderboards(frames: DatasetFrames, progress: Mapping[int, pd.DataFrame], root: str, s: DatasetTableSettings) -> None:
    """Every method on one table, per seed and pooled; each model against each linear method; the methods' rows
    (all on the comparison genes)."""
    frame = frames.comparison
    genes = (len(frames.comparison_genes), frames.n_measured)
    for seed in (*s.seeds, None):
        table = leaderboard_table(frame, progress, s.primary_metric, s.stats, seed, frames.comparison_spread,
                                  s.mode_collapse_spread, n_genes=genes[0])
        seeds = list(s.seeds) if seed is None else [seed]
        where = root if seed is None else f"{root}/seed{seed}"
        title = f"Leaderboard ({s.dataset})" + ("" if seed is None else f", split seed {seed}")
        note = leaderboard_note(s.dataset, s.primary_metric, seeds, seed is None, s.stats.confidence, genes,
                                s.exclude_target_gene)
        write_table(table, note, title, where, "leaderboard", s)
    comparisons = model_comparisons(frame, s.stats, n_genes=genes[0])
    write_table(comparisons, model_comparisons_note(s.dataset, s.seeds, s.stats.confidence, genes, s.exclude_target_gene),
                f"Models of one's own against the linear methods ({s.dataset})", root, "model_comparisons", s)
    write_parquet(frame, f"{root}/per_method.parquet")
