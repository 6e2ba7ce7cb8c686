"""The LSFT note's published protocol (SPEC section 9.1): **it leaks test data**, for comparison only.

Differences from the default protocol (SPEC sections 2-6):

* split: a 70/15/15 shuffle (:func:`lsftbench.split.seed_compat_split`), ``ctrl`` a training column
  and an LSFT neighbour candidate;
* embeddings from Δ, not expression: ``A`` = PCA scores of ``Y_train`` (genes as observations),
  ``B_train`` = PCA scores of ``Y_trainᵀ`` (conditions as observations) and ``B_test`` = the same PCA
  applied to the test perturbation's **own observed Δ** (the leak, which also drives the LSFT
  neighbour search);
* LSFT refits both PCAs on the local columns (``min(d, n, n_genes)`` dims) and projects the test
  profile with the local PCA.

Every output of this protocol carries :data:`LEAK_LABEL`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from .conditions import CTRL
from .embeddings import TABLE_TYPES, Embedding, pert_columns_from_rows
from .lsft import LsftResult, cosine_similarity, n_neighbours
from .pca import pca_scores
from .problem import Problem
from .ridge import predict, solve_y_axb

if TYPE_CHECKING:
    import anndata as ad

__all__ = ["LEAK_LABEL", "SEED_PCA", "build_seed_embedding", "seed_lsft"]

LEAK_LABEL = "seed_compat: LEAKS TEST DATA (each test perturbation's observed expression defines its own embedding)"
SEED_PCA = "seed_pca"


def _pca(profiles: np.ndarray, dim: int) -> PCA:
    """PCA with conditions as observations (rows of ``profiles``), genes centred."""
    k = max(1, min(dim, *profiles.shape))
    # A single local observation has no variance: sklearn's explained-variance ratio divides by zero,
    # while the projection it is used for stays defined.
    with np.errstate(invalid="ignore", divide="ignore"):
        return PCA(n_components=k, svd_solver="full").fit(profiles)


def build_seed_embedding(
    spec: dict[str, Any],
    pb: ad.AnnData,
    split: dict[str, list[str]],
    dim: int,
    *,
    gene_table: pd.DataFrame | None = None,
    pert_table: pd.DataFrame | None = None,
) -> Embedding:
    """Embeddings of one baseline under the seed protocol (train and test columns; val is unused)."""
    model = spec.get("model", "ridge")
    gtype = spec.get("gene", {"type": "training_pca"})["type"] if model != "mean" else "none"
    pert = spec.get("pert", {"type": "training_pca"})
    x = np.asarray(pb.X, dtype=np.float64)
    delta = pd.DataFrame((x - x[pb.obs_names.get_loc(CTRL)]).T, index=pb.var_names, columns=pb.obs_names)
    train, test = list(split["train"]), list(split["test"])
    y_train = delta[train].to_numpy()

    genes = pb.var_names
    if gtype == "none":
        a = np.zeros((len(genes), 0))
    elif gtype == "training_pca":
        a, gtype = pca_scores(y_train, dim), SEED_PCA
    elif gtype == "random":
        a = np.random.default_rng(int(spec["gene"].get("seed", 1))).standard_normal((len(genes), int(spec["gene"].get("dim", dim))))
    elif gtype in TABLE_TYPES:
        genes = genes[genes.isin(gene_table.index)]
        a = gene_table.loc[genes].to_numpy(dtype=np.float64)
    else:
        raise ValueError(f"gene embedding type {gtype!r} is not available under protocol seed_compat")

    ptype, conds, missing = pert["type"], train + test, []
    if ptype == "training_pca":
        fitted = _pca(y_train.T, dim)
        b = fitted.transform(delta[conds].to_numpy().T).T  # test columns: the leak
        ptype = SEED_PCA
    elif ptype == "random":
        b = np.random.default_rng(int(pert.get("seed", 1))).standard_normal((int(pert.get("dim", dim)), len(conds)))
    elif ptype in TABLE_TYPES:
        conds, b, missing = pert_columns_from_rows(pert_table, conds)
    else:
        raise ValueError(f"perturbation embedding type {ptype!r} is not available under protocol seed_compat")
    info = {
        "protocol": "seed_compat",
        "leaks_test_data": ptype == SEED_PCA,
        "not_predictable": sorted(missing),
        "n_test_predictable": sum(c in set(conds) for c in test),
        "n_test": len(test),
        "n_genes": len(genes),
        "synthetic_parts": [],
    }
    return Embedding(pd.Index(genes, name="gene"), np.asarray(a, dtype=np.float64), pd.Index(conds, name="condition"),
                     np.asarray(b, dtype=np.float64), gtype, ptype, model, info)


def seed_lsft(
    problem: Problem, top_pct: float, ridge: float, center: str = "local", tests: list[str] | None = None
) -> LsftResult:
    """LSFT as the seed code ran it: ``ctrl`` is a candidate, PCAs refit on the local Δ columns."""
    emb = problem.embedding
    tests = problem.test if tests is None else list(tests)
    candidates = problem.train  # ctrl included
    n = n_neighbours(len(candidates), top_pct)
    sims = cosine_similarity(problem.b(tests), problem.b(candidates))
    order = np.argsort(-sims, axis=1, kind="stable")[:, :n]
    y_cand = problem.y[:, problem.col(candidates)]
    center_global = y_cand.mean(axis=1)
    local, knn = [], []
    for i, t in enumerate(tests):
        y_sel = y_cand[:, order[i]]
        knn.append(y_sel.mean(axis=1))
        c = knn[-1] if center == "local" else center_global
        if emb.model == "mean":
            local.append(knn[-1])
            continue
        a = pca_scores(y_sel, emb.A.shape[1]) if emb.gene_type == SEED_PCA else emb.A
        if emb.pert_type == SEED_PCA:
            fitted = _pca(y_sel.T, emb.B.shape[0])
            b_sel = fitted.transform(y_sel.T).T
            b_t = fitted.transform(problem.y[:, problem.col([t])].T).T  # the local leak
        else:
            b_sel, b_t = problem.b([candidates[j] for j in order[i]]), problem.b([t])
        k, c = solve_y_axb(y_sel, a, b_sel, ridge, center=c)
        local.append(predict(a, k, b_t, c)[:, 0])
    return LsftResult(
        conditions=tests,
        local=np.column_stack(local),
        knn=np.column_stack(knn),
        n_neighbours=n,
        mean_similarity=np.take_along_axis(sims, order, axis=1).mean(axis=1),
        neighbours=[[candidates[j] for j in row] for row in order],
    )
