"""Rule lsft: LSFT and kNN predictions and metrics for one chunk of test perturbations of one
(dataset, protocol, split seed, baseline, K%)."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

import numpy as np

from lsftbench.io import write_npz, write_parquet
from lsftbench.lsft import LsftResult, lsft, n_neighbours
from lsftbench.metrics import metric_columns
from lsftbench.problem import load_problem
from lsftbench.smk import column, key_columns, setup_logging, test_chunk


def empty_result(problem, top_pct):
    """The result of a shard past the chunk cap: no test perturbations."""
    n = n_neighbours(len(problem.train if w.protocol == "seed_compat" else problem.train_perts), top_pct)
    empty = np.zeros((len(problem.genes), 0))
    return LsftResult([], empty, empty, n, np.zeros(0), [])


log = setup_logging(snakemake)  # noqa: F821
inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards  # noqa: F821
problem = load_problem(inp.pseudobulk, inp.split, inp.embedding, p.top_genes)
chunk, n_used = test_chunk(problem.test, int(w.chunk), int(w.n_chunks))
if n_used < int(w.n_chunks):
    log.warning(
        "lsft.test_chunks = %s but only %d test perturbations are predictable: capped to %d chunks; chunk %s is %s",
        w.n_chunks, len(problem.test), n_used, w.chunk, "empty" if not chunk else f"{len(chunk)} perturbations",
    )
top_pct = float(w.pct)
if not chunk:
    result = empty_result(problem, top_pct)
elif w.protocol == "seed_compat":
    from lsftbench.seed_compat import seed_lsft  # scikit-learn: only this protocol pays its import

    result = seed_lsft(problem, top_pct, p.ridge_penalty, version=p.published_version, tests=chunk)
else:
    result = lsft(
        problem, top_pct, p.ridge_penalty, center=p.center, refit_embeddings=p.refit_embeddings, tests=chunk,
        shared=inp.shared,  # memory-mapped products written once by the global fit
    )
obs = problem.y[:, problem.col(chunk)]
train_mean = problem.train_mean  # for the centred Pearson r: all training perturbations (SPEC 7)
local = metric_columns(result.local, obs, problem.top_idx, train_mean)
knn = metric_columns(result.knn, obs, problem.top_idx, train_mean)
n_rows = len(chunk)
rows = {
    **key_columns(w, n_rows),
    "top_pct": column(n_rows, top_pct, np.float64),
    "condition": np.asarray(chunk, dtype=str),
    **{f"local_{name}": values for name, values in local.items()},
    **{f"knn_{name}": values for name, values in knn.items()},
    "train_size": column(n_rows, result.n_neighbours, np.int64),
    "n_train_candidates": column(n_rows, len(problem.train if w.protocol == "seed_compat" else problem.train_perts), np.int64),
    "mean_similarity": np.asarray(result.mean_similarity, dtype=np.float64),
    "neighbours": np.asarray([";".join(n) for n in result.neighbours], dtype=str),
}
if w.protocol == "seed_compat":
    from lsftbench.seed_compat import published_center

    rows["center"] = column(n_rows, published_center(p.published_version), str)
    rows["published_version"] = column(n_rows, p.published_version, str)
else:
    rows["center"] = column(n_rows, p.center, str)
rows["refit_embeddings"] = column(n_rows, bool(p.refit_embeddings), bool)
rows["n_genes"] = column(n_rows, len(problem.genes), np.int64)
log.info(
    "%s on %s (%s, seed %s), top %s%%: %d perturbations, %d neighbours each, mean local r %.4f, mean kNN r %.4f",
    w.baseline, w.dataset, w.protocol, w.seed, w.pct, n_rows, result.n_neighbours,
    local["pearson_r"].mean() if n_rows else float("nan"),
    knn["pearson_r"].mean() if n_rows else float("nan"),
)
write_parquet(rows, snakemake.output.metrics)  # noqa: F821
# Predicted Δ (genes × tests) for the rank metrics, which compare every test perturbation with all others.
write_npz(
    snakemake.output.predictions,  # noqa: F821
    conditions=np.asarray(chunk, dtype=str),
    genes=np.asarray(problem.genes, dtype=str),
    local=result.local.astype(np.float32),
    knn=result.knn.astype(np.float32),
)
