"""Rule seed_compat_gene_table: a gene table as the published code's loaders build it (seed_compat only)."""

from lsftbench.embeddings.gene_tables import write_gene_table
from lsftbench.model.seed_compat import published_gene_table
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
kind = snakemake.params.kind  # noqa: F821
table = published_gene_table(kind, dict(snakemake.input.items()))  # noqa: F821
write_gene_table(table, snakemake.output[0])  # noqa: F821
log.info("%s table: %d genes x %d dims", kind, *table.shape)
