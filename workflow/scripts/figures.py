"""Rule figures: the leaderboard, local vs global Pearson r, the per-perturbation improvement, the progress bar."""

from lsftbench.pipeline.job import setup_logging
from lsftbench.pipeline.provenance import provenance_line
from lsftbench.report.leaderboard import metric_label
from lsftbench.report.plots import write_dataset_figures

log = setup_logging(snakemake)  # noqa: F821
inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards  # noqa: F821
outputs = list(snakemake.output)  # noqa: F821
write_dataset_figures(
    inp.performance, inp.per_perturbation, inp.progress, outputs, dataset=w.dataset, protocol=w.protocol,
    confidence=p.confidence, leaderboard=inp.leaderboard, seed_progress=list(inp.seed_progress),
    primary_metric=metric_label(p.primary_metric), seeds=p.seeds, synthetic=p.synthetic,
    provenance=provenance_line(p.settings, f"tables/{w.protocol}/README.md"),
)
log.info("wrote %s", outputs)
