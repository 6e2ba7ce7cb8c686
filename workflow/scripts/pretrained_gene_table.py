"""Rule pretrained_gene_table: gene embeddings from an scGPT or scFoundation checkpoint."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

from pathlib import Path

from lsftbench.gene_tables import write_gene_table
from lsftbench.pretrained import extract_scfoundation, extract_scgpt
from lsftbench.smk import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, spec = snakemake.input, snakemake.params.spec  # noqa: F821
if spec["type"] == "scgpt":
    table = extract_scgpt(Path(inp["best_model.pt"]).parent)
else:
    table = extract_scfoundation(inp.checkpoint, inp.gene_list)
log.info("%s (%s): %d genes x %d dims", spec["type"], spec["checkpoint"], *table.shape)
write_gene_table(table, snakemake.output[0])  # noqa: F821
