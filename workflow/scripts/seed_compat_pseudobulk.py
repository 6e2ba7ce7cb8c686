"""Rule seed_compat_pseudobulk: the published code's float32 pseudobulk (seed_compat only)."""

from lsftbench.io import write_h5ad
from lsftbench.model.seed_compat import published_pseudobulk
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
pb = published_pseudobulk(snakemake.input[0])  # noqa: F821
write_h5ad(pb, snakemake.output[0])  # noqa: F821
log.info("published-protocol pseudobulk: %d conditions x %d genes", pb.n_obs, pb.n_vars)
