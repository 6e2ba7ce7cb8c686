"""Rule subgroup_tables: lsft_performance, de_metrics, progress bar and leaderboard per test subgroup (SPEC 10)."""

from lsftbench.pipeline.job import setup_logging
from lsftbench.report.dataset_tables import DatasetTableSettings, write_subgroup_tables

log = setup_logging(snakemake)  # noqa: F821
inp, w = snakemake.input, snakemake.wildcards  # noqa: F821
settings = DatasetTableSettings.from_params(w.dataset, w.protocol, snakemake.params)  # noqa: F821
table = write_subgroup_tables(inp.per_perturbation, settings, inp.de, inp.per_method, inp.noise_ceiling)
log.info("%d rows (pooled): subgroups %s", len(table), ", ".join(dict.fromkeys(table["Subgroup"])))
