"""Local similarity-filtered training (SPEC section 6).

For each test condition ``t`` and a top-K %, the ``n = max(1, ceil(n_train · K / 100))`` training
perturbations whose embedding columns are most cosine-similar to ``B[:, t]`` are kept; the model is
refit on them only (``training_pca`` embeddings recomputed from the local expression with
``min(d, n)`` dimensions, fixed embeddings subset) and predicts ``t``. The plain kNN prediction (mean
Δ of the kept neighbours) is returned alongside.

:func:`lsft` hoists the shared work out of the per-perturbation loop; :func:`lsft_reference` is the
straightforward loop over the same math, kept for parity tests and the benchmark.

The fast path: similarities and neighbour lists for all tests at once; column centring of the
training expression ``X`` does not depend on the subset, so ``G = XᵀX`` and ``C = X_gᵀY`` are formed
once (:class:`_Shared`) and each local PCA refit is a top-``d`` eigenproblem of an ``n × n``
principal submatrix of ``G`` instead of an SVD of a genes × ``n`` matrix (:func:`_local_pca_basis`);
the local ridge fit needs only ``n × n`` submatrices and ``d × d`` solves; the genes-sized products
are batched over tests. Predictions equal the loop's up to rounding (checked in the tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from .conditions import CTRL
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


#: Largest tolerated ``ε·λ₁ / (λ_k − λ_{k+1})`` of a local Gram matrix (first-order bound on the
#: rounding error of its top-k eigenspace); above it the local PCA falls back to the SVD. The bound
#: is pessimistic for the predictions: on K562-sized and genome-wide synthetic data the prediction
#: differences to the loop's SVD stayed ≤ 3e-13 (relative) for bounds up to 1.4e-10, well inside
#: the 1e-10 tolerance of the parity tests.
_GRAM_TOL = 1e-8


def _local_pca_basis(gram_s: np.ndarray, xt: np.ndarray, sel: np.ndarray, dim: int) -> np.ndarray | None:
    """Right singular vectors ``V`` (n × k) of the local centred expression ``X_s``: scores are ``X_s V``.

    ``X_s`` = columns ``sel`` of the centred training expression (``xt`` holds its transpose) and
    ``gram_s = X_sᵀX_s``. The ridge predictions depend on the scores only through the subspace they
    span (``A(AᵀA + λI)⁻¹Aᵀ`` and ``Bᵀ(BBᵀ + λI)⁻¹b`` are invariant under ``A → AR``, ``B → RᵀB``
    with ``R`` orthogonal), so the top-k eigenvectors of the n × n Gram matrix give the predictions
    of the SVD of the genes × n matrix at a fraction of the cost. ``None`` means all components are
    kept (``n ≤ dim``): then ``X_s`` itself spans the same space. Forming the Gram matrix squares the
    condition number, so if the eigengap is too small for its eigenvectors to be accurate to
    ``_GRAM_TOL`` (first-order bound ``ε·λ₁ / (λ_k − λ_{k+1})``) the SVD of ``X_s`` is used instead.
    """
    n = len(sel)
    k = min(dim, xt.shape[1], n)
    if k == n:
        return None
    vals, vecs = scipy.linalg.eigh(
        gram_s, subset_by_index=[n - k - 1, n - 1], driver="evr", check_finite=False
    )
    gap = vals[1] - vals[0]
    if gap > 0 and np.finfo(float).eps * max(vals[-1], 0.0) / gap <= _GRAM_TOL:
        return vecs[:, :0:-1]
    u, _, _ = np.linalg.svd(xt[sel], full_matrices=False)  # xt[sel] = X_sᵀ: its U is X_s's V
    return u[:, :k]


class _Shared:
    """Subset-independent matrices of one problem, computed once and reused by every :func:`lsft` call.

    ``X`` is the training expression (measured genes × training perturbations) with each column
    centred over genes; ``Y`` the training Δ of the embedding's genes; ``X_g`` the rows of ``X`` at
    the embedding's genes. Local PCA, local gene-side ridge fits and predictions are all expressed
    through principal submatrices of ``G = XᵀX``, ``G_g = X_gᵀX_g`` and ``C = X_gᵀY``.
    """

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.y_t = np.ascontiguousarray(problem.y.T[problem.col(problem.train_perts)])  # N × genes
        self._cache: dict[str, np.ndarray] = {}

    def get(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = getattr(self, f"_make_{name}")()
        return self._cache[name]

    def _make_xt(self) -> np.ndarray:  # Xᵀ: N × measured genes, C-contiguous
        expr = self.problem.expr
        values_t = expr.to_numpy(dtype=np.float64).T  # conditions × genes (a view for pandas' layout)
        xt = np.ascontiguousarray(values_t[expr.columns.get_indexer(self.problem.train_perts)])
        # C = X_gᵀY has a shortcut when Y is the expression minus the control mean (as built by
        # make_problem) on the same genes: checked exactly, before the centring below.
        self.y_is_expr_minus_ctrl = CTRL in expr.columns and self._identity_rows(xt.shape[1])
        if self.y_is_expr_minus_ctrl:
            ctrl = values_t[expr.columns.get_loc(CTRL)]
            for a in range(0, len(xt), 256):  # blockwise: no N × genes temporary
                if not np.array_equal(self.y_t[a : a + 256], xt[a : a + 256] - ctrl):
                    self.y_is_expr_minus_ctrl = False
                    break
        xt -= xt.mean(axis=1, keepdims=True)  # column centring does not depend on the subset
        return xt

    def _identity_rows(self, n_measured: int | None = None) -> bool:
        rows = self.problem.gene_rows
        n_measured = self.get("xt").shape[1] if n_measured is None else n_measured
        return len(rows) == n_measured and bool(np.all(rows == np.arange(len(rows))))

    def _make_xgt(self) -> np.ndarray:  # X_gᵀ: N × embedding genes
        return self.get("xt") if self._identity_rows() else np.ascontiguousarray(self.get("xt")[:, self.problem.gene_rows])

    def _make_gram(self) -> np.ndarray:
        xt = self.get("xt")
        return xt @ xt.T

    def _make_gram_g(self) -> np.ndarray:
        if self._identity_rows():
            return self.get("gram")
        xgt = self.get("xgt")
        return xgt @ xgt.T

    def _make_cross(self) -> np.ndarray:  # C = X_gᵀY: N × N
        return self.get("xgt") @ self.y_t.T

    def _make_xt_ctrl(self) -> np.ndarray:  # Xᵀb (b: control mean)
        return self.get("xt") @ self.problem.expr[CTRL].to_numpy(dtype=np.float64)

    def cross_sub(self, sel: np.ndarray) -> np.ndarray:
        """``C_s = X_g,sᵀY_s``.

        If ``Y = X_raw − b1ᵀ`` on the measured genes (``X = X_raw − 1μᵀ``, so ``Xᵀ1 = 0``), then
        ``C = XᵀX − (Xᵀb)1ᵀ``: a submatrix of the Gram matrix, no second N × N product needed.
        """
        self.get("xt")
        if self.y_is_expr_minus_ctrl:
            return _sub(self.get("gram"), sel) - self.get("xt_ctrl")[sel][:, None]
        return _sub(self.get("cross"), sel)

    def _make_target_rows(self) -> np.ndarray:  # X at the training targets: N × N, [i, j] = X[target_i, j]
        targets = np.array([self.problem.target_rows[c] for c in self.problem.train_perts])
        return np.ascontiguousarray(self.get("xt")[:, targets].T)


def _sub(m: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """Principal submatrix ``m[sel][:, sel]`` of a square C-contiguous ``m``."""
    return m.ravel().take(sel[:, None] * m.shape[1] + sel)


def _csr_times_dense(w: sp.csr_matrix, mat: np.ndarray) -> np.ndarray:
    """``w @ mat`` over column blocks of ``mat`` that stay in cache (same sums in the same order)."""
    out = np.empty((w.shape[0], mat.shape[1]))
    step = max(64, (1 << 19) // max(1, mat.shape[0]))
    for a in range(0, mat.shape[1], step):
        out[:, a : a + step] = w @ np.ascontiguousarray(mat[:, a : a + step])
    return out


def _shared(problem: Problem) -> _Shared:
    shared = problem.__dict__.get("_lsft_shared")
    if shared is None or shared.problem is not problem:
        shared = problem.__dict__["_lsft_shared"] = _Shared(problem)
    return shared


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
    """LSFT predictions for ``tests`` (default: all predictable test conditions).

    Subset-independent matrices are computed once per ``problem`` and cached on it (the problem's
    arrays must not be modified in place afterwards). Per test perturbation only ``n × n`` and
    ``d``-sized work remains; the genes-sized products (kNN means, refit-gene predictions) are done
    for all tests at once as sparse × dense products, each test's column summed in neighbour order
    so that results do not depend on how the tests are chunked.
    """
    tests = _check(problem, center, tests)
    emb = problem.embedding
    shared = _shared(problem)
    n_train = len(problem.train_perts)
    b_train = problem.b(problem.train_perts)
    n = n_neighbours(n_train, top_pct)
    b_tests = problem.b(tests)
    sims = cosine_similarity(b_tests, b_train)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :n]
    center_global = training_center(problem) if center == "global" else None
    n_tests, n_genes = len(tests), problem.y.shape[0]

    def by_test(values: np.ndarray, mat: np.ndarray) -> np.ndarray:
        """``Σ_j values[i, j] · mat[order[i, j]]`` for each test ``i``, transposed (columns × tests)."""
        w = sp.csr_matrix((values.ravel(), order.ravel(), np.arange(0, n_tests * n + 1, n)), shape=(n_tests, n_train))
        return _csr_times_dense(w, mat).T

    knn = by_test(np.ones((n_tests, n)), shared.y_t) / n  # genes × tests
    if emb.model == "mean":
        local = knn.copy()
    else:
        refit_gene = refit_embeddings and emb.gene_type == "training_pca"
        refit_pert = refit_embeddings and emb.pert_type == "training_pca"
        dim_a, dim_b = emb.A.shape[1], emb.B.shape[0]
        # Both refit with different dimensions: A and B take nested sets of ordered components,
        # which the rotation-invariant shortcut does not provide.
        ordered = refit_gene and refit_pert and dim_a != dim_b
        if refit_gene or refit_pert:
            xt, gram = shared.get("xt"), shared.get("gram")
            dim = dim_a if refit_gene else dim_b
        if refit_gene:
            gram_g = shared.get("gram_g")
            if center == "global":
                cross_center = shared.get("xgt") @ center_global  # X_gᵀ c
        else:
            a = emb.A
            proj = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T)  # (AᵀA + λI)⁻¹Aᵀ, reused
            proj_y = proj @ shared.y_t.T
            proj_center_global = proj @ center_global if center == "global" else None
            z_fixed = np.empty((a.shape[1], n_tests))
        if refit_pert:
            target_x = shared.get("target_rows")
        u_gene = np.empty((n_tests, n))  # refit gene side: prediction = X_g[:, sel] u + c
        for i, t in enumerate(tests):
            sel = order[i]
            if refit_gene or refit_pert:
                if ordered:
                    u, _, _ = np.linalg.svd(xt[sel], full_matrices=False)  # xt[sel] = X_sᵀ
                    v_a, v_b = u[:, : min(dim_a, u.shape[1])], u[:, : min(dim_b, u.shape[1])]
                else:
                    v_a = v_b = _local_pca_basis(_sub(gram, sel), xt, sel, dim)
            if refit_gene:
                # AᵀA = VᵀG_g,sV and Aᵀ(Y_s − c1ᵀ) = Vᵀ(C_s − (X_g,sᵀc)1ᵀ), with A = X_g,s V
                c_s = shared.cross_sub(sel)
                xc = c_s.mean(axis=1) if center == "local" else cross_center[sel]
                aty = c_s - xc[:, None]
                ata = _sub(gram_g, sel)
                if v_a is not None:
                    ata, aty = v_a.T @ ata @ v_a, v_a.T @ aty
                left = np.linalg.solve(ata + ridge * np.eye(ata.shape[0]), aty)
            else:
                pc = proj_y[:, sel].mean(axis=1) if center == "local" else proj_center_global
                left = proj_y[:, sel] - pc[:, None]
            if refit_pert:
                # B = (X[targets_s, s] V)ᵀ, b_t = X[target_t, s] V
                b_sel = _sub(target_x, sel)
                b_t = xt[sel, problem.target_rows[t]]
                if v_b is not None:
                    b_sel, b_t = b_sel @ v_b, b_t @ v_b
                b_sel = b_sel.T
            else:
                b_sel = b_train[:, sel]
                b_t = b_tests[:, i]
            # K b_t = left Bᵀ (BBᵀ + λI)⁻¹ b_t: one d_B × d_B solve per perturbation
            w = np.linalg.solve(b_sel @ b_sel.T + ridge * np.eye(b_sel.shape[0]), b_t)
            z = left @ (b_sel.T @ w)
            if refit_gene:
                u_gene[i] = z if v_a is None else v_a @ z
            else:
                z_fixed[:, i] = z
        if refit_gene:
            local = by_test(u_gene, shared.get("xgt"))
        else:
            local = np.column_stack([emb.A @ z_fixed[:, i] for i in range(n_tests)]) if n_tests else np.zeros((n_genes, 0))
        local += knn if center == "local" else center_global[:, None]
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
