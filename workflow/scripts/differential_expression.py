"""Rule differential_expression: Welch's t-test of every perturbation against ctrl, from the pseudobulk's statistics."""

from lsftbench.evaluation.de import differential_expression_from_files
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp = snakemake.input  # noqa: F821
de = differential_expression_from_files(inp.pseudobulk, inp.data)
de.save(snakemake.output[0])  # noqa: F821
sizes = (de.qvalue < 0.05).sum(axis=1)
log.info("%d perturbations x %d genes; DE genes at q < 0.05: median %d; GEARS DE genes from %s",
         len(de.conditions), len(de.genes), int(sorted(sizes)[len(sizes) // 2]) if len(sizes) else 0, de.gears_source)
