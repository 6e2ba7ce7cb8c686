"""Rule training_pca: PCA of the training pseudobulk of one (dataset, split seed), shared by its baselines."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

from lsftbench.embeddings import training_pca
from lsftbench.io import read_json
from lsftbench.problem import read_mean_expression
from lsftbench.smk import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards  # noqa: F821
pca = training_pca(read_mean_expression(inp.pseudobulk), read_json(inp.split), p.pca_dim)
log.info(
    "training PCA of %s (seed %s): %d genes x %d components from %d training conditions",
    w.dataset, w.seed, *pca.scores.shape, len(pca.train),
)
pca.save(snakemake.output[0])  # noqa: F821
