"""Rule pretrained_gene_table: gene embeddings from an scGPT or scFoundation checkpoint."""

from lsftbench.embeddings.gene_tables import write_gene_table
from lsftbench.embeddings.pretrained import extract_gene_table
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
spec = snakemake.params.spec  # noqa: F821
table = extract_gene_table(spec["type"], dict(snakemake.input.items()))  # noqa: F821
log.info("%s (%s): %d genes x %d dims", spec["type"], spec["checkpoint"], *table.shape)
write_gene_table(table, snakemake.output[0])  # noqa: F821
