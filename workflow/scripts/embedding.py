"""Rule embedding: gene and perturbation embeddings of one (dataset, protocol, split seed, baseline)."""

from lsftbench.model.protocol import get_protocol
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards  # noqa: F821
emb = get_protocol(w.protocol).embedding(
    p.spec, dict(inp.items()), dim=p.pca_dim, split_seed=int(w.seed), dataset=w.dataset, baseline=w.baseline,
    min_table_genes=p.min_table_genes,
)
log.info(
    "%s on %s: A %s (%s), B %s (%s); %d of %d test perturbations predictable; not predictable: %s",
    w.baseline, w.dataset, emb.A.shape, emb.gene_type, emb.B.shape, emb.pert_type,
    emb.info["n_test_predictable"], emb.info["n_test"], emb.info["not_predictable"],
)
emb.save(snakemake.output[0])  # noqa: F821
