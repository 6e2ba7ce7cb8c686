"""Rule evaluate_model: a model's own predictions for one (dataset, split seed), checked and scored."""

from lsftbench.evaluation.scoring import score_model
from lsftbench.pipeline.job import job_keys, setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, out, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards  # noqa: F821
options = dict(p.options)
scored = score_model(
    options.pop("path"), inp.pseudobulk, inp.split, top_genes=p.top_genes, keys=job_keys(w),
    exclude_target_gene=p.exclude_target_gene, cell_totals=inp.get("cell_totals"), **options,
)
for note in scored.notes:
    log.info("%s", note)
log.info("%s", scored.summary())
scored.write(out.metrics, out.predictions)
