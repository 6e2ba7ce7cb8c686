"""Rule global_fit: fit on all training conditions, predict and score the test perturbations."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

import json
import time

import numpy as np

from lsftbench.coverage import unpredictable_reasons
from lsftbench.global_fit import global_predictions
from lsftbench.io import write_npz, write_parquet
from lsftbench.lsft import save_shared
from lsftbench.metrics import metric_columns
from lsftbench.problem import load_problem
from lsftbench.smk import column, key_columns, setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards  # noqa: F821
# mean_response predicts every test perturbation from the mean of all training perturbations (SPEC 5);
# its pert embedding only chooses LSFT neighbours. seed_compat keeps the published code's conditions.
every_condition = w.protocol != "seed_compat"
problem = load_problem(inp.pseudobulk, inp.split, inp.embedding, p.top_genes, every_condition=every_condition)
n_test = len(problem.test) + len(problem.test_not_predictable)
if len(problem.test) < p.min_predictable_tests:
    raise ValueError(
        f"{inp.embedding}: baseline {w.baseline} can predict only {len(problem.test)} of the {n_test} test "
        f"perturbations of {w.dataset} (fewer than metrics.min_predictable_tests = {p.min_predictable_tests}); "
        f"not predictable: {problem.test_not_predictable[:10]}"
    )
if w.protocol == "seed_compat":
    from lsftbench.seed_compat import seed_global_predictions

    pred = seed_global_predictions(problem, p.ridge_penalty)
else:
    pred = global_predictions(problem, p.ridge_penalty)
obs = problem.y[:, problem.col(problem.test)]
metrics = metric_columns(pred, obs, problem.top_idx, problem.train_mean)  # centred r: m over all train perts (SPEC 7); ranks: in aggregation, over the common test set
n_rows = len(problem.test)
rows = {
    **key_columns(w, n_rows),
    "condition": np.asarray(problem.test, dtype=str),
    **metrics,
    "n_genes": column(n_rows, len(problem.genes), np.int64),
    "n_test": column(n_rows, n_test, np.int64),
    "n_test_predictable": column(n_rows, len(problem.test), np.int64),
    "synthetic_stand_in": column(n_rows, ",".join(problem.embedding.info.get("synthetic_parts", [])), str),
}
log.info("%s on %s (%s, seed %s): mean Pearson r %.4f, mean L2 %.4f over %d test perturbations (%d not predictable)",
         w.baseline, w.dataset, w.protocol, w.seed, metrics["pearson_r"].mean(), metrics["l2"].mean(), n_rows, len(problem.test_not_predictable))
write_parquet(rows, snakemake.output.metrics)  # noqa: F821
# Predicted and observed Δ (genes × tests) for the rank metrics; why the other tests are not predictable.
write_npz(
    snakemake.output.predictions,  # noqa: F821
    conditions=np.asarray(problem.test, dtype=str),
    genes=np.asarray(problem.genes, dtype=str),
    predicted=pred,
    observed=obs,
    not_predictable=np.asarray(
        json.dumps(unpredictable_reasons(problem.test_not_predictable, problem.measured_genes, problem.embedding))
    ),
)
# The LSFT products of the training set, for this baseline's K shards (seed_compat's LSFT refits per shard).
started = time.perf_counter()
shared = save_shared(problem, snakemake.output.lsft_shared, share=w.protocol != "seed_compat")  # noqa: F821
log.info("LSFT products shared with the K shards: %s (%.2f s)", ", ".join(shared) or "none (nothing is refitted)",
         time.perf_counter() - started)
