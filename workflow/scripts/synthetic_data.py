"""Rule synthetic_data: write a seeded synthetic GEARS-format dataset."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

from lsftbench.io import write_h5ad
from lsftbench.smk import setup_logging
from lsftbench.synthetic import make_dataset

log = setup_logging(snakemake)  # noqa: F821
p = snakemake.params  # noqa: F821
adata = make_dataset(p.preset, seed=p.seed, **{k: (int(v) if float(v).is_integer() else v) for k, v in p.overrides.items()})
log.info("synthetic %s (seed %s): %d cells x %d genes", p.preset, p.seed, adata.n_obs, adata.n_vars)
write_h5ad(adata, snakemake.output[0])  # noqa: F821
