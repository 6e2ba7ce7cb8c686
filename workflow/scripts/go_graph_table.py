"""Rule go_graph_table: adjacency spectral embedding of the GEARS GO graph."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

from lsftbench.gene_tables import write_gene_table
from lsftbench.go_graph import go_graph_embedding
from lsftbench.smk import setup_logging

log = setup_logging(snakemake)  # noqa: F821
table = go_graph_embedding(snakemake.input.csv, snakemake.params.dim)  # noqa: F821
log.info("GO graph %s: %d genes x %d dims; eigenvalues %s", snakemake.input.csv, *table.shape,  # noqa: F821
         table.attrs.get("eigenvalues"))
write_gene_table(table, snakemake.output[0])  # noqa: F821
