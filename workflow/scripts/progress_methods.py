"""Rule progress_methods: predictions of the null and idealized (test-data-using) methods on one split's test set."""

from lsftbench.evaluation.progress_bar import null_predictions_from_files
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards  # noqa: F821
nulls = null_predictions_from_files(inp.pseudobulk, inp.split, dim=p.pca_dim, ridge=p.ridge_penalty,
                                    random_seed=p.random_seed, idealized_pert=p.idealized_pert)
nulls.save(snakemake.output[0])  # noqa: F821
log.info("%s seed %s: predictions of %s for %d test perturbations over %d genes", w.dataset, w.seed,
         ", ".join(nulls.predicted), len(nulls.test), len(nulls.genes))
