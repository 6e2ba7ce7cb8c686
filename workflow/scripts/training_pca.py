"""Rule training_pca: PCA of the training pseudobulk of one (dataset, split seed), shared by its baselines."""

from lsftbench.embeddings.build import training_pca_from_files
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, w = snakemake.input, snakemake.wildcards  # noqa: F821
pca = training_pca_from_files(inp.pseudobulk, inp.split, snakemake.params.pca_dim)  # noqa: F821
log.info("training PCA of %s (seed %s): %d genes x %d components from %d training conditions",
         w.dataset, w.seed, *pca.scores.shape, len(pca.train))
if pca.scores.shape[1] < pca.dim:
    log.warning("pca_dim = %d capped at %d components for %s (seed %s): the training pseudobulk has rank %d at most",
                pca.dim, pca.scores.shape[1], w.dataset, w.seed, pca.scores.shape[1])
pca.save(snakemake.output[0])  # noqa: F821
