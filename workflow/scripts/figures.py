"""Rule figures: local vs global Pearson r and the distribution of per-perturbation improvement."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

import pandas as pd

from lsftbench.plots import improvement_distribution_figure, local_vs_global_figure, save_figure
from lsftbench.smk import setup_logging

log = setup_logging(snakemake)  # noqa: F821
w = snakemake.wildcards  # noqa: F821
leak = " [seed_compat: LEAKS TEST DATA]" if snakemake.params.protocol == "seed_compat" else ""  # noqa: F821
df = pd.read_parquet(snakemake.input[0])  # noqa: F821
outputs = list(snakemake.output)  # noqa: F821
save_figure(local_vs_global_figure(df, f"LSFT vs global fit: {w.dataset}{leak}"), [o for o in outputs if "local_vs_global" in o])
save_figure(
    improvement_distribution_figure(df, f"Per-perturbation improvement: {w.dataset}{leak}"),
    [o for o in outputs if "improvement_distribution" in o],
)
log.info("wrote %s", outputs)
