"""Rule pseudobulk: mean expression per condition, streamed over row chunks."""

from lsftbench.data.pseudobulk import pseudobulk
from lsftbench.io import write_h5ad
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
# The chunk size changes memory use, not the result, so it is read from the config, not a param.
chunk_size = snakemake.config["pseudobulk"]["chunk_size"]  # noqa: F821
pb = pseudobulk(snakemake.input[0], chunk_size=chunk_size, allow_raw_counts=snakemake.params.allow_raw_counts)  # noqa: F821
log.info("%d conditions x %d genes; cells per condition: median %d", pb.n_obs, pb.n_vars, int(pb.obs["n_cells"].median()))
write_h5ad(pb, snakemake.output[0])  # noqa: F821
