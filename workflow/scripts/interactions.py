"""Rule interactions: the genetic-interaction table and TPR-FDP figures of a dataset with doubles (SPEC 10)."""

from lsftbench.evaluation.interaction_scores import interactions_from_files
from lsftbench.pipeline.job import setup_logging
from lsftbench.pipeline.provenance import provenance_line
from lsftbench.report.dataset_tables import DatasetTableSettings
from lsftbench.report.interaction_tables import write_interactions

log = setup_logging(snakemake)  # noqa: F821
inp, out, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards  # noqa: F821
settings = DatasetTableSettings.from_params(w.dataset, "default", p)
seeds = [int(s) for s in p.seeds]
lsft = {}
for (seed, baseline, pct), path in zip(p.files["lsft"], inp.lsft_predictions, strict=True):
    lsft.setdefault((int(seed), baseline, float(pct)), []).append(path)
tables, curves = interactions_from_files(
    inp.pseudobulk, dict(zip(seeds, inp.splits, strict=True)),
    {(int(s), b): path for (s, b), path in zip(p.files["global"], inp.global_predictions, strict=True)}, lsft,
    {(int(s), m): path for (s, m), path in zip(p.files["models"], inp.model_predictions, strict=True)},
    top_genes=settings.top_genes,
)
figures = {s: [f for f in out.figures if f"_seed{s}." in f] for s in seeds}
pooled = write_interactions(tables, curves, f"{out.pooled[0].rsplit('/', 1)[0]}", figures, settings,
                            provenance=provenance_line(p.settings, "tables/default/README.md"))
log.info("%d methods x 2 directions; pooled TPR at FDP 0.1 above 0: %d rows", len(pooled) // 2,
         int((pooled["TPR at FDP 0.1"] > 0).sum()))
