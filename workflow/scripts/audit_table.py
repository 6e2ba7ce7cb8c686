"""Rule audit_table: the published (leaking) protocol's numbers beside the clean ones, per dataset."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

import pandas as pd

from lsftbench.audit import audit_markdown, audit_table
from lsftbench.io import write_csv, write_text
from lsftbench.smk import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, out = snakemake.input, snakemake.output  # noqa: F821
table = audit_table(pd.read_csv(inp.default), pd.read_csv(inp.seed_compat))
write_csv(table, out.csv)
write_text(audit_markdown(table, snakemake.wildcards.dataset), out.md)  # noqa: F821
log.info("audit of %s: %d rows", snakemake.wildcards.dataset, len(table))  # noqa: F821
