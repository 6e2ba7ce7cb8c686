"""Rule synthetic_data: write a seeded synthetic GEARS-format dataset."""

from lsftbench.data.synthetic.datasets import make_dataset
from lsftbench.io import write_h5ad
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
p = snakemake.params  # noqa: F821
adata = make_dataset(p.preset, seed=p.seed, **p.overrides)
log.info("synthetic %s (seed %s): %d cells x %d genes", p.preset, p.seed, adata.n_obs, adata.n_vars)
write_h5ad(adata, snakemake.output[0])  # noqa: F821
