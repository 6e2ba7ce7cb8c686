"""Rule audit_table: the published (leaking) protocol's numbers beside the clean ones, per dataset."""

import pandas as pd

from lsftbench.io import write_csv, write_text
from lsftbench.pipeline.job import setup_logging
from lsftbench.report.audit import audit_markdown, audit_table

log = setup_logging(snakemake)  # noqa: F821
inp, out, w = snakemake.input, snakemake.output, snakemake.wildcards  # noqa: F821
table = audit_table(pd.read_csv(inp.default), pd.read_csv(inp.seed_compat))
write_csv(table, out.csv)
write_text(audit_markdown(table, w.dataset, snakemake.params.synthetic, snakemake.params.settings), out.md)  # noqa: F821
log.info("audit of %s: %d rows", w.dataset, len(table))
