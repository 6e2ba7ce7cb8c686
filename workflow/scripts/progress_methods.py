"""Rule progress_methods: null and idealized (test-data-using) methods scored on one split's test set."""

from lsftbench.evaluation.progress_bar import method_scores_from_files
from lsftbench.io import write_parquet
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards  # noqa: F821
scores = method_scores_from_files(
    inp.pseudobulk, inp.split, split_seed=int(w.seed), dim=p.pca_dim, ridge=p.ridge_penalty,
    random_seed=p.random_seed, top_n=p.top_genes, idealized_pert=p.idealized_pert,
    exclude_target_gene=p.exclude_target_gene,
)
write_parquet(scores, snakemake.output[0])  # noqa: F821
log.info("mean scores on %s seed %s:\n%s", w.dataset, w.seed, scores.groupby("method")[["pearson_r", "l2"]].mean())
