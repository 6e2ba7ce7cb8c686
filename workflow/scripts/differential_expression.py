"""Rule differential_expression: the DE test (metrics.de_test) of every perturbation against ctrl."""

from lsftbench.evaluation.de import TESTS, differential_expression_from_files
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, p = snakemake.input, snakemake.params  # noqa: F821
# Memory knobs only (the result does not depend on them), so they are not params: changing them reruns nothing.
# The rank-sum pass holds a chunk of cells beside its sort keys: at most 10,000 cells per read (as fast as 20,000,
# 0.4 GB less at Norman size; docs/benchmarks.md, issue 28).
memory = snakemake.config  # noqa: F821
de = differential_expression_from_files(
    inp.pseudobulk, inp.data, p.test, chunk_size=min(memory["pseudobulk"]["chunk_size"], 10_000),
    max_bytes=memory["progress_bar"]["max_mb"] << 20, allow_raw_counts=p.allow_raw_counts,
)
de.save(snakemake.output[0])  # noqa: F821
sizes = (de.qvalue < 0.05).sum(axis=1)
log.info("%s: %d perturbations x %d genes; DE genes at q < 0.05: median %d; GEARS DE genes from %s",
         TESTS[de.test], len(de.conditions), len(de.genes), int(sorted(sizes)[len(sizes) // 2]) if len(sizes) else 0, de.gears_source)
