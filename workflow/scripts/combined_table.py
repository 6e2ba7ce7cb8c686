"""Rule combined_table: every dataset's pooled performance table (common test set) in one CSV and Markdown file."""

import pandas as pd

from lsftbench.io import write_csv, write_text
from lsftbench.pipeline.job import setup_logging
from lsftbench.report.markdown import to_markdown
from lsftbench.report.notes import combined_note, run_note
from lsftbench.report.tables import combined_table

log = setup_logging(snakemake)  # noqa: F821
p, out, w = snakemake.params, snakemake.output, snakemake.wildcards  # noqa: F821
table = combined_table({dataset: pd.read_csv(path) for dataset, path in zip(p.datasets, snakemake.input.performance, strict=True)})  # noqa: F821
write_csv(table, out.csv)
write_text(to_markdown(table, title="LSFT performance across datasets", note=run_note(combined_note(w.protocol), p.synthetic, p.settings, w.protocol)), out.md)
log.info("%d rows over %d datasets", len(table), len(p.datasets))
