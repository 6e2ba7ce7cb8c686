"""Rule progress_methods: null and idealized (test-data-using) methods scored on one split's test set."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

from lsftbench.io import read_json, write_parquet
from lsftbench.problem import read_mean_expression
from lsftbench.progress_bar import method_scores
from lsftbench.smk import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards  # noqa: F821
scores = method_scores(
    read_mean_expression(inp.pseudobulk), read_json(inp.split), dim=p.pca_dim, ridge=p.ridge_penalty,
    random_seed=p.random_seed, top_n=p.top_genes, idealized_pert=p.idealized_pert,
)
scores.insert(0, "seed", int(w.seed))
write_parquet(scores, snakemake.output[0])  # noqa: F821
log.info("mean scores on %s seed %s:\n%s", w.dataset, w.seed, scores.groupby("method")[["pearson_r", "l2"]].mean())
