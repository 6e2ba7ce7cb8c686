"""Rule export_method_predictions: every method's predictions on one (dataset, split seed), in cell-eval's form."""

from pathlib import Path

from lsftbench.pipeline.job import setup_logging
from lsftbench.report.export import export_predictions

log = setup_logging(snakemake)  # noqa: F821
inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards  # noqa: F821
rows = export_predictions(
    inp.pseudobulk, inp.split, inp.nulls, snakemake.output[0],  # noqa: F821
    global_fits={Path(path).stem: path for path in inp.global_fits}, lsft_shards=p.shards, dataset=w.dataset,
    seed=int(w.seed),
)
log.info("wrote %d methods into %s (shift %g)", len(rows), snakemake.output[0], rows[0]["shift"])  # noqa: F821
