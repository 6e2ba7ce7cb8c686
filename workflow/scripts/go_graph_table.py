"""Rule go_graph_table: adjacency spectral embedding of the GEARS GO graph."""

from lsftbench.embeddings.gene_tables import write_gene_table
from lsftbench.embeddings.go_graph import go_graph_embedding
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
csv = snakemake.input.csv  # noqa: F821
table = go_graph_embedding(csv, snakemake.params.dim)  # noqa: F821
log.info("GO graph %s: %d genes x %d dims; eigenvalues %s", csv, *table.shape, table.attrs.get("eigenvalues"))
write_gene_table(table, snakemake.output[0])  # noqa: F821
