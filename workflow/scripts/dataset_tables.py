"""Rule dataset_tables: pooled and per-seed tables (CSV + Markdown) of one (dataset, protocol)."""

from lsftbench.pipeline.job import setup_logging
from lsftbench.report.dataset_tables import DatasetTableSettings, write_dataset_tables

log = setup_logging(snakemake)  # noqa: F821
inp, out, w = snakemake.input, snakemake.output, snakemake.wildcards  # noqa: F821
settings = DatasetTableSettings.from_params(w.dataset, w.protocol, snakemake.params)  # noqa: F821
frames = write_dataset_tables(inp, out.per_perturbation, settings)
df = frames.per_perturbation
log.info(
    "%d per-perturbation rows: %d baselines x %d K x %d seeds; common test set per seed: %s",
    len(df), df.baseline.nunique(), df.top_pct.nunique(), df.seed.nunique(), frames.common_sizes,
)
