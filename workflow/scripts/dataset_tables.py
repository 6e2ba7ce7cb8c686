"""Rule dataset_tables: the LSFT note's three tables (CSV + Markdown) and the per-perturbation rows."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

from pathlib import Path

import pandas as pd

from lsftbench.io import write_csv, write_parquet, write_text
from lsftbench.smk import setup_logging
from lsftbench.tables import (
    fraction_improved_table,
    per_perturbation,
    performance_table,
    protocol_label,
    summary_table,
    to_markdown,
)

log = setup_logging(snakemake)  # noqa: F821
inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards  # noqa: F821
global_rows = pd.concat([pd.read_parquet(f) for f in inp.global_metrics], ignore_index=True)
lsft_rows = pd.concat([pd.read_parquet(f) for f in inp.lsft], ignore_index=True)
df = per_perturbation(lsft_rows, global_rows)
coverage = global_rows.groupby("baseline", sort=True)[["n_test", "n_test_predictable", "n_genes"]].first().reset_index()
tables = {
    "lsft_performance": (performance_table(df), "Performance by baseline and top %"),
    "fraction_improved": (fraction_improved_table(df), "Fraction of perturbations improved"),
    "summary": (summary_table(df, coverage, p.skipped, p.protocol), "Summary statistics"),
}
note = f"Dataset `{w.dataset}`; means over test perturbations; improvement > 0 means LSFT beats the global fit."
if p.protocol != "default":
    note = f"**Protocol: {protocol_label(p.protocol)}**\n\n{note}"
    for name, (table, title) in tables.items():
        table.insert(0, "Protocol", p.protocol)
for path in snakemake.output.tables:  # noqa: F821
    name, ext = Path(path).stem, Path(path).suffix
    table, title = tables[name]
    if ext == ".csv":
        write_csv(table, path)
    else:
        write_text(to_markdown(table, title=f"{title} ({w.dataset})", note=note), path)
write_parquet(df, snakemake.output.per_perturbation)  # noqa: F821
log.info("%d per-perturbation rows, %d baselines x %d K", len(df), df.baseline.nunique(), df.top_pct.nunique())
