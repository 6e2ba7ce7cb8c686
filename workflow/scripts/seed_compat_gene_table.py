"""Rule seed_compat_gene_table: a gene table as the published code's loaders build it (seed_compat only)."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

from pathlib import Path

from lsftbench.gene_tables import write_gene_table
from lsftbench.seed_compat import gears_go_table, scgpt_encoder_table
from lsftbench.smk import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp = snakemake.input  # noqa: F821
if snakemake.params.kind == "scgpt":  # noqa: F821
    table = scgpt_encoder_table(Path(inp["best_model.pt"]).parent)
else:
    table = gears_go_table(inp.csv)
write_gene_table(table, snakemake.output[0])  # noqa: F821
log.info("%s table: %d genes x %d dims", snakemake.params.kind, *table.shape)  # noqa: F821
