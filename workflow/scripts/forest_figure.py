"""Rule forest_figure: LSFT improvement with its CI per baseline x K, one panel per dataset (seeds pooled)."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

import pandas as pd

from lsftbench.plots import forest_figure, save_figure
from lsftbench.smk import setup_logging

log = setup_logging(snakemake)  # noqa: F821
tables = {dataset: pd.read_csv(path) for dataset, path in zip(snakemake.params.datasets, snakemake.input)}  # noqa: F821
save_figure(forest_figure(
    tables, n_seeds=snakemake.params.n_seeds, protocol=snakemake.wildcards.protocol,  # noqa: F821
    confidence=snakemake.params.confidence,  # noqa: F821
), list(snakemake.output))  # noqa: F821
log.info("wrote %s", list(snakemake.output))  # noqa: F821
