"""Rule lsft: LSFT and kNN predictions and metrics for one chunk of test perturbations of one
(dataset, protocol, split seed, baseline, K%)."""

from lsftbench.evaluation.scoring import score_lsft_shard
from lsftbench.model.protocol import LsftSettings
from lsftbench.pipeline.job import job_keys, setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, out, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards  # noqa: F821
settings = LsftSettings(ridge=p.ridge_penalty, center=p.center, refit_embeddings=p.refit_embeddings,
                        published_version=p.published_version)
shard = score_lsft_shard(
    w.protocol, inp.pseudobulk, inp.split, inp.embedding, inp.shared,  # shared: memory-mapped products of the fit
    top_pct=float(w.pct), chunk=int(w.chunk), n_chunks=int(w.n_chunks), settings=settings, top_genes=p.top_genes,
    keys=job_keys(w), exclude_target_gene=p.exclude_target_gene,
)
for warning in shard.warnings:
    log.warning("%s", warning)
log.info("%s", shard.summary())
shard.write(out.metrics, out.predictions)
