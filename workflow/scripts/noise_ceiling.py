"""Rule noise_ceiling: the sampling-noise ceiling of every seed's test perturbations, cells streamed once."""

from lsftbench.evaluation.noise_ceiling import noise_ceiling_from_files
from lsftbench.io import write_parquet
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, p = snakemake.input, snakemake.params  # noqa: F821
# Memory knobs only (the result does not depend on them), so they are not params: changing them reruns nothing.
memory = snakemake.config  # noqa: F821
ceiling = noise_ceiling_from_files(
    inp.data, inp.pseudobulk, dict(zip(p.seeds, inp.splits)), list(inp.gene_sources), replicates=p.replicates,
    seed=p.seed, top_n=p.top_genes, exclude_target_gene=p.exclude_target_gene,
    chunk_size=memory["pseudobulk"]["chunk_size"], max_bytes=memory["progress_bar"]["max_mb"] << 20,
)
write_parquet(ceiling, snakemake.output[0])  # noqa: F821
log.info("noise ceiling of %d test perturbations on %d genes, %d replicates: mean r %.4f, mean L2 %.4f",
         len(ceiling), int(ceiling["n_genes"].iloc[0]), p.replicates, ceiling["pearson_r"].mean(), ceiling["l2"].mean())
