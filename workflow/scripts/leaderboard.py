"""Rule leaderboard: every dataset's leaderboard side by side (primary metric and % of gap closed per dataset)."""

import pandas as pd

from lsftbench.io import write_csv, write_text
from lsftbench.pipeline.job import setup_logging
from lsftbench.report.leaderboard import cross_dataset_leaderboard, cross_dataset_note
from lsftbench.report.markdown import to_markdown
from lsftbench.report.notes import run_note

log = setup_logging(snakemake)  # noqa: F821
p, out = snakemake.params, snakemake.output  # noqa: F821
tables = {dataset: pd.read_csv(path) for dataset, path in zip(p.datasets, snakemake.input.leaderboards, strict=True)}  # noqa: F821
table = cross_dataset_leaderboard(tables, p.primary_metric)
write_csv(table, out.csv)
write_text(to_markdown(table, title="Leaderboard across datasets", note=run_note(cross_dataset_note(p.primary_metric), p.synthetic, p.settings, snakemake.wildcards.protocol)), out.md)  # noqa: F821
log.info("%d methods over %d datasets", len(table), len(tables))
