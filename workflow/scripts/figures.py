"""Rule figures: local vs global Pearson r with CIs, the distribution of per-perturbation improvement, the progress bar."""

from lsftbench.pipeline.job import setup_logging
from lsftbench.report.plots import write_dataset_figures

log = setup_logging(snakemake)  # noqa: F821
inp, w = snakemake.input, snakemake.wildcards  # noqa: F821
outputs = list(snakemake.output)  # noqa: F821
write_dataset_figures(
    inp.performance, inp.per_perturbation, inp.progress, outputs, dataset=w.dataset, protocol=w.protocol,
    confidence=snakemake.params.confidence,  # noqa: F821
)
log.info("wrote %s", outputs)
