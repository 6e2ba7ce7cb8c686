"""Rule global_fit: fit on all training conditions, predict and score the test perturbations."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

import anndata as ad
import pandas as pd

from lsftbench.global_fit import global_predictions
from lsftbench.io import write_h5ad, write_parquet
from lsftbench.metrics import perturbation_metrics, rank_metrics
from lsftbench.problem import load_problem
from lsftbench.smk import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards  # noqa: F821
problem = load_problem(inp.pseudobulk, inp.split, inp.embedding, p.top_genes)
n_test = len(problem.test) + len(problem.test_not_predictable)
if len(problem.test) < p.min_predictable_tests:
    raise ValueError(
        f"{inp.embedding}: baseline {w.baseline} can predict only {len(problem.test)} of the {n_test} test "
        f"perturbations of {w.dataset} (fewer than metrics.min_predictable_tests = {p.min_predictable_tests}); "
        f"not predictable: {problem.test_not_predictable[:10]}"
    )
pred = global_predictions(problem, p.ridge_penalty)
obs = problem.y[:, problem.col(problem.test)]
rows = perturbation_metrics(pred, obs, problem.top_idx).join(rank_metrics(pred, obs))
rows.insert(0, "condition", problem.test)
rows.insert(0, "baseline", w.baseline)
rows.insert(0, "dataset", w.dataset)
rows["n_genes"] = len(problem.genes)
rows["n_test"] = n_test
rows["n_test_predictable"] = len(problem.test)
rows["synthetic_stand_in"] = ",".join(problem.embedding.info.get("synthetic_parts", []))
log.info("%s on %s: mean Pearson r %.4f, mean L2 %.4f over %d test perturbations (%d not predictable)",
         w.baseline, w.dataset, rows.pearson_r.mean(), rows.l2.mean(), len(problem.test), len(problem.test_not_predictable))
write_parquet(rows, snakemake.output.metrics)  # noqa: F821
predictions = ad.AnnData(
    X=pred.T, obs=pd.DataFrame(index=pd.Index(problem.test, name="condition")), var=pd.DataFrame(index=problem.genes),
    layers={"observed": obs.T},
)
predictions.uns["not_predictable"] = problem.test_not_predictable
write_h5ad(predictions, snakemake.output.predictions)  # noqa: F821
