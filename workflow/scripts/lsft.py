"""Rule lsft: LSFT predictions and metrics for one chunk of test perturbations of one (dataset, baseline, K%)."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

import numpy as np

from lsftbench.lsft import lsft
from lsftbench.io import write_parquet
from lsftbench.metrics import perturbation_metrics
from lsftbench.problem import load_problem
from lsftbench.seed_compat import seed_lsft
from lsftbench.smk import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards  # noqa: F821
problem = load_problem(inp.pseudobulk, inp.split, inp.embedding, p.top_genes)
chunk = np.array_split(np.asarray(problem.test, dtype=object), int(w.n_chunks))[int(w.chunk)].tolist()
top_pct = float(w.pct)
if p.protocol == "seed_compat":
    result = seed_lsft(problem, top_pct, p.ridge_penalty, center=p.center, tests=chunk)
else:
    result = lsft(problem, top_pct, p.ridge_penalty, center=p.center, refit_embeddings=p.refit_embeddings, tests=chunk)
obs = problem.y[:, problem.col(chunk)]
local = perturbation_metrics(result.local, obs, problem.top_idx).add_prefix("local_")
knn = perturbation_metrics(result.knn, obs, problem.top_idx).add_prefix("knn_")
rows = local.join(knn)
rows.insert(0, "condition", chunk)
rows.insert(0, "top_pct", top_pct)
rows.insert(0, "baseline", w.baseline)
rows.insert(0, "dataset", w.dataset)
rows["train_size"] = result.n_neighbours
rows["n_train_candidates"] = len(problem.train if p.protocol == "seed_compat" else problem.train_perts)
rows["protocol"] = p.protocol
rows["mean_similarity"] = result.mean_similarity
rows["neighbours"] = [";".join(n) for n in result.neighbours]
rows["center"] = p.center
rows["refit_embeddings"] = p.refit_embeddings
rows["n_genes"] = len(problem.genes)
log.info("%s on %s, top %s%%: %d perturbations, %d neighbours each, mean local r %.4f, mean kNN r %.4f",
         w.baseline, w.dataset, w.pct, len(chunk), result.n_neighbours,
         rows.local_pearson_r.mean() if len(rows) else float("nan"), rows.knn_pearson_r.mean() if len(rows) else float("nan"))
write_parquet(rows, snakemake.output[0])  # noqa: F821
