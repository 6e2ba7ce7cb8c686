"""Rule figures: local vs global Pearson r with CIs and the distribution of per-perturbation improvement."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

import pandas as pd

from lsftbench.plots import improvement_distribution_figure, local_vs_global_figure, progress_bar_figure, save_figure
from lsftbench.smk import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, w = snakemake.input, snakemake.wildcards  # noqa: F821
outputs = list(snakemake.output)  # noqa: F821
perf = pd.read_csv(inp.performance)
save_figure(
    local_vs_global_figure(
        perf, f"LSFT vs global fit: {w.dataset} (split seeds pooled)", protocol=w.protocol,
        confidence=snakemake.params.confidence,  # noqa: F821
    ),
    [o for o in outputs if "local_vs_global" in o],
)
save_figure(
    improvement_distribution_figure(
        pd.read_parquet(inp.per_perturbation), f"Per-perturbation improvement: {w.dataset}", protocol=w.protocol
    ),
    [o for o in outputs if "improvement_distribution" in o],
)
save_figure(
    progress_bar_figure(pd.read_csv(inp.progress), f"Progress bar: {w.dataset} (split seeds pooled)", protocol=w.protocol),
    [o for o in outputs if "progress_bar" in o],
)
log.info("wrote %s", outputs)
