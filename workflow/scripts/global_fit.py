"""Rule global_fit: fit on all training conditions, predict and score the test perturbations."""

from lsftbench.evaluation.scoring import score_global_fit
from lsftbench.pipeline.job import job_keys, setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, out, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards  # noqa: F821
fit = score_global_fit(
    w.protocol, inp.pseudobulk, inp.split, inp.embedding, ridge=p.ridge_penalty, top_genes=p.top_genes,
    min_predictable_tests=p.min_predictable_tests, keys=job_keys(w), exclude_target_gene=p.exclude_target_gene,
)
log.info("%s", fit.summary())
# the LSFT products of the training set are written for this baseline's K shards
log.info("%s", fit.write(out.metrics, out.predictions, out.lsft_shared))
