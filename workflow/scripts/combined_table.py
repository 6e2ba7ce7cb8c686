"""Rule combined_table: Table 1 of every dataset in one CSV and one Markdown file."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

from pathlib import Path

import pandas as pd

from lsftbench.io import write_csv, write_text
from lsftbench.smk import setup_logging
from lsftbench.tables import combined_table, protocol_label, to_markdown

log = setup_logging(snakemake)  # noqa: F821
frames = {Path(f).parent.name: pd.read_parquet(f) for f in snakemake.input}  # noqa: F821
table = combined_table(frames)
protocol = snakemake.params.protocol  # noqa: F821
if protocol != "default":
    table.insert(0, "Protocol", protocol)
write_csv(table, snakemake.output.csv)  # noqa: F821
write_text(to_markdown(table, title="LSFT performance across datasets", note=f"Protocol: {protocol_label(protocol)}"),
           snakemake.output.md)  # noqa: F821
log.info("%d rows over %d datasets", len(table), len(frames))
