"""Rule noise_ceiling: the sampling-noise ceiling of every seed's test perturbations, cells streamed once."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

from lsftbench.io import read_json, write_parquet
from lsftbench.noise_ceiling import noise_ceiling
from lsftbench.problem import read_mean_expression
from lsftbench.progress_bar import train_mean_delta
from lsftbench.smk import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, p = snakemake.input, snakemake.params  # noqa: F821
pb = read_mean_expression(inp.pseudobulk)
splits = {seed: read_json(path) for seed, path in zip(p.seeds, inp.splits)}
tests = sorted({c for split in splits.values() for c in split["test"]})
# Memory knobs only (the result does not depend on them), so they are not params: changing them reruns nothing.
memory = snakemake.config  # noqa: F821
ceiling = noise_ceiling(
    inp.data, pb, replicates=p.replicates, seed=p.seed, conditions=tests,
    centers={f"seed{seed}": train_mean_delta(pb, split) for seed, split in splits.items()},
    top_n=p.top_genes, chunk_size=memory["pseudobulk"]["chunk_size"], max_bytes=memory["progress_bar"]["max_mb"] << 20,
)
write_parquet(ceiling, snakemake.output[0])  # noqa: F821
log.info("noise ceiling of %d test perturbations, %d replicates: mean r %.4f, mean L2 %.4f",
         len(ceiling), p.replicates, ceiling["pearson_r"].mean(), ceiling["l2"].mean())
