"""Rule lsft: LSFT and kNN predictions and metrics for one chunk of test perturbations of one
(dataset, protocol, split seed, baseline, K%)."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

import numpy as np

from lsftbench.io import write_npz, write_parquet
from lsftbench.lsft import LsftResult, lsft, n_neighbours
from lsftbench.metrics import perturbation_metrics
from lsftbench.problem import load_problem
from lsftbench.smk import setup_logging, test_chunk



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
local = perturbation_metrics(result.local, obs, problem.top_idx, train_mean).add_prefix("local_")
knn = perturbation_metrics(result.knn, obs, problem.top_idx, train_mean).add_prefix("knn_")
rows = local.join(knn)
rows.insert(0, "condition", chunk)
rows.insert(0, "top_pct", top_pct)
rows.insert(0, "baseline", w.baseline)
rows.insert(0, "seed", int(w.seed))
rows.insert(0, "protocol", w.protocol)
rows.insert(0, "dataset", w.dataset)
rows["train_size"] = result.n_neighbours
rows["n_train_candidates"] = len(problem.train if w.protocol == "seed_compat" else problem.train_perts)
rows["mean_similarity"] = result.mean_similarity
rows["neighbours"] = [";".join(n) for n in result.neighbours]
if w.protocol == "seed_compat":
    from lsftbench.seed_compat import published_center

    rows["center"] = published_center(p.published_version)
    rows["published_version"] = p.published_version
else:
    rows["center"] = p.center
rows["refit_embeddings"] = p.refit_embeddings
rows["n_genes"] = len(problem.genes)
log.info(
    "%s on %s (%s, seed %s), top %s%%: %d perturbations, %d neighbours each, mean local r %.4f, mean kNN r %.4f",
    w.baseline, w.dataset, w.protocol, w.seed, w.pct, len(chunk), result.n_neighbours,
    rows.local_pearson_r.mean() if len(rows) else float("nan"),
    rows.knn_pearson_r.mean() if len(rows) else float("nan"),
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
