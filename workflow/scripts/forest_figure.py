"""Rule forest_figure: LSFT improvement with its CI per baseline x K, one panel per dataset (seeds pooled)."""

from lsftbench.pipeline.job import setup_logging
from lsftbench.pipeline.provenance import provenance_line
from lsftbench.report.plots import write_forest_figure

log = setup_logging(snakemake)  # noqa: F821
p, outputs = snakemake.params, list(snakemake.output)  # noqa: F821
performance = dict(zip(p.datasets, snakemake.input.performance, strict=True))  # noqa: F821
write_forest_figure(performance, outputs, n_seeds=p.n_seeds, protocol=snakemake.wildcards.protocol,  # noqa: F821
                    confidence=p.confidence, synthetic=p.synthetic,
                    provenance=provenance_line(p.settings, f"tables/{snakemake.wildcards.protocol}/README.md"))  # noqa: F821
log.info("wrote %s", outputs)
