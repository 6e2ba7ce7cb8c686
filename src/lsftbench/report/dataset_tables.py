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

from ..evaluation.statistics import StatsSettings
from ..io import write_csv, write_parquet, write_text
from .aggregate import DatasetFrames, add_mode_collapse, dataset_frames, progress_tables
from .tables import (
    fraction_improved_table,
    fraction_note,
    performance_note,
    performance_table,
    progress_note,
    rank_note,
    summary_table,
    to_markdown,
)

__all__ = ["DatasetTableSettings", "write_dataset_tables", "write_table"]

#: The performance tables: file name → (test set, title suffix).
_PERFORMANCE = {
    "lsft_performance": ("common", ""),
    "lsft_performance_per_baseline": ("per_baseline", " (per-baseline test sets)"),
}


@dataclass(frozen=True)
class DatasetTableSettings:
    """The config values the tables of a dataset depend on."""

    dataset: str
    protocol: str
    seeds: Sequence[int]
    stats: StatsSettings
    top_genes: int = 1000
    rank_distance: str = "l2"
    mode_collapse_margin: float = 0.05
    skipped: Mapping[str, str] | None = None

    @classmethod
    def from_params(cls, dataset: str, protocol: str, params: Any) -> DatasetTableSettings:
        """From the rule's ``params`` (``seeds``, ``statistics``, ``top_genes``, ``rank_distance``,
        ``mode_collapse_margin``, ``skipped``)."""
        return cls(dataset, protocol, list(params.seeds), StatsSettings.from_config(params.statistics),
                   params.top_genes, params.rank_distance, params.mode_collapse_margin, dict(params.skipped))


def write_table(table: pd.DataFrame, note: str | None, title: str, root: str | os.PathLike[str], name: str,
                protocol: str) -> None:
    """One table as CSV (numeric columns) and Markdown (CI cells); a protocol other than the default says so in both."""
    if protocol != "default":
        table = table.copy()
        table.insert(0, "Protocol", protocol)
    write_csv(table, f"{root}/{name}.csv")
    write_text(to_markdown(table, title=title, note=note), f"{root}/{name}.md")


def _performance_tables(df: pd.DataFrame, root: str, seed: int | None, s: DatasetTableSettings) -> dict[str, pd.DataFrame]:
    """The performance tables (common and per-baseline test sets) and the fraction improved of one seed or pooled."""
    context = dict(dataset=s.dataset, protocol=s.protocol, stats=s.stats)
    tables = {}
    for name, (test_set, suffix) in _PERFORMANCE.items():
        table = performance_table(df, seed=seed, test_set=test_set, stats=s.stats, top_genes=s.top_genes)
        tables[name] = add_mode_collapse(table, s.mode_collapse_margin)
        note = performance_note(df, seed=seed, test_set=test_set, top_genes=s.top_genes, **context)
        note += "\n" + rank_note(s.mode_collapse_margin)
        write_table(tables[name], note, f"Performance by baseline and top %{suffix} ({s.dataset})", root, name, s.protocol)
    frac = fraction_improved_table(df, seed=seed, stats=s.stats)
    write_table(frac, fraction_note(df, seed=seed, **context), f"Fraction of perturbations improved ({s.dataset})",
                root, "fraction_improved", s.protocol)
    return tables


def write_dataset_tables(
    inputs: Mapping[str, Any], per_perturbation: str | os.PathLike[str], settings: DatasetTableSettings
) -> DatasetFrames:
    """Write every table of one (dataset, protocol) into the folder of ``per_perturbation``.

    ``inputs`` are the rule's inputs by name: ``global_metrics``, ``global_predictions``, ``lsft``
    (shard tables), ``progress_methods`` (one per seed, in ``settings.seeds`` order) and
    ``noise_ceiling``. Returns what the tables were made from (for the log).
    """
    s = settings
    frames = dataset_frames(inputs["global_metrics"], inputs["global_predictions"], inputs["lsft"],
                            distance=s.rank_distance)
    df = frames.per_perturbation
    root = str(Path(per_perturbation).parent)
    for seed in s.seeds:
        _performance_tables(df, f"{root}/seed{seed}", seed, s)
    pooled = _performance_tables(df, root, None, s)
    methods = {seed: pd.read_parquet(path) for seed, path in zip(s.seeds, inputs["progress_methods"], strict=True)}
    progress, pooled_progress = progress_tables(df, methods, pd.read_parquet(inputs["noise_ceiling"]))
    for seed, table in progress.items():
        write_table(table, progress_note(), f"Progress bar, split seed {seed} ({s.dataset})", f"{root}/seed{seed}",
                    "progress_bar", s.protocol)
    write_table(pooled_progress, progress_note(pooled=True), f"Progress bar ({s.dataset})", root, "progress_bar",
                s.protocol)
    summary = summary_table(
        df, frames.coverage, s.skipped or {}, s.protocol, unpredictable=frames.unpredictable,
        perf=pooled["lsft_performance"], stats=s.stats, top_genes=s.top_genes,
    )
    write_table(summary, None, f"Summary statistics ({s.dataset})", root, "summary", s.protocol)
    write_parquet(df, per_perturbation)
    return frames
