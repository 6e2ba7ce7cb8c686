"""Local similarity-filtered training (SPEC section 6).

For each test condition ``t`` and a top-K %, the ``n = max(1, ceil(n_train · K / 100))`` training
perturbations whose embedding columns are most cosine-similar to ``B[:, t]`` are kept; the model is
refit on them only (``training_pca`` embeddings recomputed from the local expression with
``min(d, n)`` dimensions, fixed embeddings subset) and predicts ``t``. The plain kNN prediction (mean
Δ of the kept neighbours) is returned alongside.

:func:`lsft` hoists the shared work out of the per-perturbation loop (batched similarities, fixed
gene-side factorisations reused, only ``d × d`` solves per perturbation). :func:`lsft_reference` is
the straightforward loop over the same math, kept for parity tests and the benchmark.

The local PCA refits (``training_pca`` embeddings) are the expensive part of the loop. Column
centring of the training expression matrix does not depend on the subset, so the Gram matrix of all
centred training columns is formed once and each refit solves a top-``d`` eigenproblem of an
``n × n`` principal submatrix instead of an SVD of a genes × ``n`` matrix (see
:func:`_local_pca_scores`; identical predictions up to rounding, checked against the loop in the
tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.linalg

from .global_fit import training_center
from .pca import pca_scores
from .problem import Problem
from .ridge import predict, solve_y_axb

__all__ = ["LsftResult", "n_neighbours", "cosine_similarity", "lsft", "lsft_reference", "CENTERS"]

CENTERS = ("local", "global")


@dataclass
class LsftResult:
    """Predictions of one (baseline, K%) for a list of test conditions (genes × tests)."""

    conditions: list[str]
    local: np.ndarray
    knn: np.ndarray
    n_neighbours: int
    mean_similarity: np.ndarray
    neighbours: list[list[str]]


def n_neighbours(n_train: int, top_pct: float) -> int:
    """``max(1, ceil(n_train · K / 100))`` in exact arithmetic."""
    return max(1, math.ceil(Fraction(n_train) * Fraction(str(top_pct)) / 100))


def cosine_similarity(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Cosine similarity between the columns of ``queries`` (d × m) and ``candidates`` (d × n)."""

    def unit(m: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(m, axis=0)
        return m / np.where(norms > 0, norms, 1.0)

    return unit(queries).T @ unit(candidates)


#: Largest tolerated ``ε·λ₁ / (λ_k − λ_{k+1})`` of a local Gram matrix (first-order size of the
#: rounding error of its top-k eigenspace); above it the local PCA falls back to the SVD. On
#: K562-sized data the prediction differences to the SVD path were below 0.4× this quantity.
_GRAM_TOL = 1e-11


def _local_pca_scores(xs: np.ndarray, gram: np.ndarray, dim: int) -> np.ndarray:
    """Top-``dim`` PCA scores of the column-centred ``xs`` (genes × n), up to a rotation.

    The predictions of the ridge model depend on the scores only through the subspace they span
    (``A(AᵀA + λI)⁻¹Aᵀ`` and ``Bᵀ(BBᵀ + λI)⁻¹b`` are invariant under ``A → AR``, ``B → RᵀB`` with ``R``
    orthogonal), so ``xs V`` with ``V`` the top eigenvectors of ``gram = xsᵀxs`` (n × n) gives the
    same predictions as ``U S`` from the SVD of ``xs`` at a fraction of the cost. When ``n ≤ dim``
    all components are kept and ``xs`` itself spans the same space. Forming the Gram matrix squares
    the condition number, so if the eigengap is too small for the eigenvectors to be accurate to
    ``_GRAM_TOL`` (first-order bound ``ε·λ₁ / (λ_k − λ_{k+1})``) the SVD is used instead.
    """
    genes, n = xs.shape
    k = min(dim, genes, n)
    if k == n:
        return xs
    vals, vecs = scipy.linalg.eigh(gram, subset_by_index=[n - k - 1, n - 1], driver="evr")
    gap = vals[1] - vals[0]
    if gap > 0 and np.finfo(float).eps * max(vals[-1], 0.0) / gap <= _GRAM_TOL:
        return xs @ vecs[:, :0:-1]
    u, s, _ = np.linalg.svd(xs, full_matrices=False)
    return u[:, :k] * s[:k]


def _check(problem: Problem, center: str, tests: list[str] | None) -> list[str]:
    if center not in CENTERS:
        raise ValueError(f"center must be one of {CENTERS}, got {center!r}")
    if not problem.train_perts:
        raise ValueError("LSFT needs at least one training perturbation with an embedding")
    tests = problem.test if tests is None else list(tests)
    unknown = sorted(set(tests) - set(problem.test))
    if unknown:
        raise ValueError(f"not predictable test conditions requested: {unknown[:5]}")
    return tests


def lsft(
    problem: Problem,
    top_pct: float,
    ridge: float,
    center: str = "local",
    refit_embeddings: bool = True,
    tests: list[str] | None = None,
) -> LsftResult:
    """LSFT predictions for ``tests`` (default: all predictable test conditions)."""
    tests = _check(problem, center, tests)
    emb = problem.embedding
    ytr = problem.y[:, problem.col(problem.train_perts)]
    b_train = problem.b(problem.train_perts)
    n = n_neighbours(len(problem.train_perts), top_pct)
    sims = cosine_similarity(problem.b(tests), b_train)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :n]
    center_global = training_center(problem)

    refit_gene = refit_embeddings and emb.gene_type == "training_pca"
    refit_pert = refit_embeddings and emb.pert_type == "training_pca"
    if refit_gene or refit_pert:
        xtr_c = problem.expr[problem.train_perts].to_numpy(dtype=np.float64, copy=True)
        xtr_c -= xtr_c.mean(axis=0, keepdims=True)  # column centring does not depend on the subset
        gram = xtr_c.T @ xtr_c  # every local PCA is an eigenproblem of a principal submatrix
        train_targets = np.array([problem.target_rows[c] for c in problem.train_perts])
        dim_a, dim_b = emb.A.shape[1], emb.B.shape[0]
        dim = dim_a if refit_gene else dim_b
        # Both refit with different dimensions: A and B take nested sets of ordered components,
        # which the rotation-invariant shortcut does not provide.
        ordered = refit_gene and refit_pert and dim_a != dim_b
    if emb.model == "ridge" and not refit_gene:
        a = emb.A
        proj = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T)  # (AᵀA + λI)⁻¹Aᵀ, reused
        proj_y = proj @ ytr
        proj_center_global = proj @ center_global

    local = np.empty((problem.y.shape[0], len(tests)))
    knn = np.empty_like(local)
    for i, t in enumerate(tests):
        sel = order[i]
        y_sel = ytr[:, sel]
        knn[:, i] = y_sel.mean(axis=1)
        c = knn[:, i] if center == "local" else center_global
        if emb.model == "mean":
            local[:, i] = knn[:, i]
            continue
        if refit_gene or refit_pert:
            if ordered:
                scores = pca_scores(xtr_c[:, sel], max(dim_a, dim_b))
                scores_a, scores_b = scores[:, :dim_a], scores[:, :dim_b]
            else:
                scores_a = scores_b = _local_pca_scores(xtr_c[:, sel], gram[np.ix_(sel, sel)], dim)
        if refit_gene:
            a_sel = scores_a[problem.gene_rows]
            k = a_sel.shape[1]
            ata = a_sel.T @ a_sel
            aty = a_sel.T @ (y_sel - c[:, None])
            left = np.linalg.solve(ata + ridge * np.eye(k), aty)
        else:
            a_sel = emb.A
            pc = proj_y[:, sel].mean(axis=1) if center == "local" else proj_center_global
            left = proj_y[:, sel] - pc[:, None]
        if refit_pert:
            b_sel = scores_b[train_targets[sel]].T
            b_t = scores_b[problem.target_rows[t]]
        else:
            b_sel = b_train[:, sel]
            b_t = problem.b([t])[:, 0]
        # K b_t = left Bᵀ (BBᵀ + λI)⁻¹ b_t: one d_B × d_B solve per perturbation
        w = np.linalg.solve(b_sel @ b_sel.T + ridge * np.eye(b_sel.shape[0]), b_t)
        local[:, i] = a_sel @ (left @ (b_sel.T @ w)) + c
    return LsftResult(
        conditions=tests,
        local=local,
        knn=knn,
        n_neighbours=n,
        mean_similarity=np.take_along_axis(sims, order, axis=1).mean(axis=1),
        neighbours=[[problem.train_perts[j] for j in row] for row in order],
    )


def lsft_reference(
    problem: Problem,
    top_pct: float,
    ridge: float,
    center: str = "local",
    refit_embeddings: bool = True,
    tests: list[str] | None = None,
) -> LsftResult:
    """The same math as :func:`lsft` as a plain loop: everything recomputed per test perturbation."""
    tests = _check(problem, center, tests)
    emb = problem.embedding
    dim_a, dim_b = emb.A.shape[1], emb.B.shape[0]
    n = n_neighbours(len(problem.train_perts), top_pct)
    local, knn, mean_sim, neighbours = [], [], [], []
    for t in tests:
        b_t = problem.b([t])[:, 0]
        sims = []
        for c in problem.train_perts:
            b_c = problem.b([c])[:, 0]
            denom = np.linalg.norm(b_t) * np.linalg.norm(b_c)
            sims.append(float(b_t @ b_c / denom) if denom > 0 else 0.0)
        kept = sorted(range(len(sims)), key=lambda j: -sims[j])[:n]  # stable: training order on ties
        names = [problem.train_perts[j] for j in kept]
        y_sel = problem.y[:, problem.col(names)]
        knn.append(y_sel.mean(axis=1))
        mean_sim.append(float(np.mean([sims[j] for j in kept])))
        neighbours.append(names)
        cen = y_sel.mean(axis=1) if center == "local" else problem.y[:, problem.col(problem.train)].mean(axis=1)
        if emb.model == "mean":
            local.append(knn[-1])
            continue
        a, b_sel = emb.A, problem.b(names)
        if refit_embeddings and "training_pca" in (emb.gene_type, emb.pert_type):
            scores = pca_scores(problem.expr[names].to_numpy(), max(dim_a, dim_b))
            if emb.gene_type == "training_pca":
                a = scores[problem.gene_rows][:, : min(dim_a, scores.shape[1])]
            if emb.pert_type == "training_pca":
                scores_b = scores[:, : min(dim_b, scores.shape[1])]
                b_sel = scores_b[[problem.target_rows[c] for c in names]].T
                b_t = scores_b[problem.target_rows[t]]
        k, cen = solve_y_axb(y_sel, a, b_sel, ridge, center=cen)
        local.append(predict(a, k, b_t[:, None], cen)[:, 0])
    return LsftResult(
        conditions=tests,
        local=np.column_stack(local) if local else np.zeros((problem.y.shape[0], 0)),
        knn=np.column_stack(knn) if knn else np.zeros((problem.y.shape[0], 0)),
        n_neighbours=n,
        mean_similarity=np.array(mean_sim),
        neighbours=neighbours,
    )
