"""Rule combined_table: every dataset's pooled performance table (common test set) in one CSV and Markdown file."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

import pandas as pd

from lsftbench.io import write_csv, write_text
from lsftbench.smk import setup_logging
from lsftbench.tables import combined_table, protocol_label, to_markdown

log = setup_logging(snakemake)  # noqa: F821
frames = {dataset: pd.read_csv(path) for dataset, path in zip(snakemake.params.datasets, snakemake.input)}  # noqa: F821
table = combined_table(frames)
protocol = snakemake.wildcards.protocol  # noqa: F821
write_csv(table, snakemake.output.csv)  # noqa: F821
note = f"Protocol: {protocol_label(protocol)}. Split seeds pooled; each dataset on its common test set."
write_text(to_markdown(table, title="LSFT performance across datasets", note=note), snakemake.output.md)  # noqa: F821
log.info("%d rows over %d datasets", len(table), len(frames))
