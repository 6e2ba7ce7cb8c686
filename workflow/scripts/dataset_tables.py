"""Rule dataset_tables: pooled and per-seed tables (CSV + Markdown) of one (dataset, protocol)."""

import os
import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

import pandas as pd

from lsftbench.aggregate import add_mode_collapse, dataset_frames, progress_tables
from lsftbench.io import write_csv, write_parquet, write_text
from lsftbench.smk import setup_logging
from lsftbench.statistics import StatsSettings
from lsftbench.tables import (
    fraction_improved_table,
    fraction_note,
    performance_note,
    performance_table,
    summary_table,
    to_markdown,
)

log = setup_logging(snakemake)  # noqa: F821
inp, out, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards  # noqa: F821
stats = StatsSettings.from_config(p.statistics)
frames = dataset_frames(inp.global_metrics, inp.global_predictions, inp.lsft, distance=p.rank_distance)
df = frames.per_perturbation
context = dict(dataset=w.dataset, protocol=w.protocol, stats=stats)


def write(table, note_text, title, root, name):
    """One table as CSV (numeric columns) and Markdown (CI cells); the leaking protocol says so in both."""
    if w.protocol != "default":
        table = table.copy()
        table.insert(0, "Protocol", w.protocol)
    write_csv(table, f"{root}/{name}.csv")
    write_text(to_markdown(table, title=f"{title} ({w.dataset})", note=note_text), f"{root}/{name}.md")


def performance_tables(root, seed):
    """Performance on the common and on the per-baseline test sets, and the fraction improved."""
    tables = {}
    for name, test_set in (("lsft_performance", "common"), ("lsft_performance_per_baseline", "per_baseline")):
        table = performance_table(df, seed=seed, test_set=test_set, stats=stats, top_genes=p.top_genes)
        tables[name] = add_mode_collapse(table, p.mode_collapse_margin)
        note = performance_note(df, seed=seed, test_set=test_set, top_genes=p.top_genes, **context) + (
            f"\nRank (lower is better): 0 when each prediction is closest to its own observation, 0.5 for random. "
            f"`Mode Collapse` names the methods whose mean rank or transposed rank is within "
            f"{p.mode_collapse_margin:g} of 0.5 (metrics.mode_collapse_margin): their predictions barely tell "
            f"perturbations apart (e.g. the same response for every perturbation)."
        )
        title = "Performance by baseline and top %" + (" (per-baseline test sets)" if test_set == "per_baseline" else "")
        write(tables[name], note, title, root, name)
    frac = fraction_improved_table(df, seed=seed, stats=stats)
    write(frac, fraction_note(df, seed=seed, **context), "Fraction of perturbations improved", root, "fraction_improved")
    return tables


root = os.path.dirname(out.per_perturbation)
for seed in p.seeds:
    performance_tables(f"{root}/seed{seed}", seed)
pooled = performance_tables(root, None)
methods = {seed: pd.read_parquet(path) for seed, path in zip(p.seeds, inp.progress_methods)}
progress, pooled_progress = progress_tables(df, methods, pd.read_parquet(inp.noise_ceiling))
progress_note = (
    "How much of the gap from the worst acceptable (WAP: best null method) to the best achievable performance "
    "(BAP: the tighter of the idealized baseline, which USES TEST DATA on purpose, and the sampling-noise "
    "ceiling) each method closes, over the common test set: % of gap closed = (score - WAP) / (BAP - WAP)."
)
for seed, table in progress.items():
    write(table, progress_note, f"Progress bar, split seed {seed}", f"{root}/seed{seed}", "progress_bar")
write(pooled_progress, progress_note + " Pooled: means over split seeds.", "Progress bar", root, "progress_bar")
summary = summary_table(
    df, frames.coverage, p.skipped, w.protocol, unpredictable=frames.unpredictable,
    perf=pooled["lsft_performance"], stats=stats, top_genes=p.top_genes,
)
write(summary, None, "Summary statistics", root, "summary")
write_parquet(df, out.per_perturbation)
log.info(
    "%d per-perturbation rows: %d baselines x %d K x %d seeds; common test set per seed: %s",
    len(df), df.baseline.nunique(), df.top_pct.nunique(), df.seed.nunique(), frames.common_sizes,
)
