"""Rule forest_figure: LSFT improvement with its CI per baseline x K, one panel per dataset (seeds pooled)."""

from lsftbench.pipeline.job import setup_logging
from lsftbench.report.plots import write_forest_figure

log = setup_logging(snakemake)  # noqa: F821
p, outputs = snakemake.params, list(snakemake.output)  # noqa: F821
performance = dict(zip(p.datasets, snakemake.input))  # noqa: F821
write_forest_figure(performance, outputs, n_seeds=p.n_seeds, protocol=snakemake.wildcards.protocol,  # noqa: F821
                    confidence=p.confidence)
log.info("wrote %s", outputs)
