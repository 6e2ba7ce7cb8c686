"""Rule cell_totals: the dataset's per-cell totals of expm1(X) and their median (scale: counts models)."""

from lsftbench.data.cell_totals import write_cell_totals
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
summary = write_cell_totals(snakemake.input.data, snakemake.output[0])  # noqa: F821
log.info("median per-cell total of expm1(X) over %d cells: %.6g (quantiles %s)", summary["n_cells"],
         summary["median_total"], summary["quantiles"])
