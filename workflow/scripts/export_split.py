"""Rule export_split: one (dataset, split seed)'s split and what a model's own training code needs to use it."""

from lsftbench.data.split import export_split
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, w = snakemake.input, snakemake.wildcards  # noqa: F821
written = export_split(inp.split, inp.pseudobulk, inp.data, list(snakemake.output), dataset=w.dataset, seed=int(w.seed))  # noqa: F821
log.info("exported the split of %s, seed %s: %s", w.dataset, w.seed, written)
