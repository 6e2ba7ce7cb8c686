"""Principal-component scores as used by the paper (``irlba::prcomp_irlba(x, n = d)$x``)."""

from __future__ import annotations

import numpy as np

__all__ = ["pca_scores", "fix_signs", "GRAM_TOL"]

# Above this size (smaller side) a truncated Lanczos SVD replaces the full one when few components
# are wanted; ARPACK is run to machine precision, so the scores agree to rounding error.
_TRUNCATED_MIN_SIDE = 1000
#: Largest tolerated first-order rounding bound ``ε·λ₁ / gap`` of eigenvectors taken from a Gram
#: matrix (forming it squares the condition number); above it the SVD is used instead. Shared by
#: :func:`pca_scores` (each component: every gap ``λ_i − λ_{i+1}``) and the LSFT local PCA
#: (:mod:`lsftbench.model.lsft`: the top-k subspace, gap ``λ_k − λ_{k+1}``). The bound is pessimistic: on
#: K562-sized and genome-wide synthetic data the LSFT prediction differences to the loop's SVD stayed
#: ≤ 3e-13 (relative) for bounds up to 1.4e-10, well inside the 1e-10 tolerance of the parity tests.
GRAM_TOL = 1e-8
# A matrix at least this many times taller than wide (the training pseudobulk: genes × conditions)
# takes its components from the eigenvectors of the small Gram matrix CᵀC instead of the SVD of C:
# for 5,000 × 734 that is 0.15 s instead of 0.8 s, when every eigengap passes GRAM_TOL.
_GRAM_ASPECT = 4


def pca_scores(x: np.ndarray, dim: int) -> np.ndarray:
    """Scores of the top-``dim`` principal components of ``x`` (observations × variables).

    Each column (variable) is centred; the scores are the left singular vectors scaled by the
    singular values, ``U[:, :k] · S[:k]``, with ``k = min(dim, rank bound)``. Signs are fixed by
    :func:`fix_signs` so results are deterministic (predictions never depend on them).
    """
    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(axis=0, keepdims=True)
    k = max(0, min(dim, *centred.shape))
    if min(centred.shape) > _TRUNCATED_MIN_SIDE and 0 < k < min(centred.shape) // 10:
        from scipy.sparse.linalg import svds  # noqa: PLC0415 - SciPy is imported only for large inputs

        v0 = np.random.default_rng(0).standard_normal(min(centred.shape))
        u, s, _ = svds(centred, k=k, tol=0, v0=v0, solver="arpack")
        order = np.argsort(-s, kind="stable")
        return fix_signs(u[:, order] * s[order])
    if 0 < k < min(centred.shape) and centred.shape[0] >= _GRAM_ASPECT * centred.shape[1]:
        scores = _gram_scores(centred, k)
        if scores is not None:
            return fix_signs(scores)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    return fix_signs(u[:, :k] * s[:k])


def _gram_scores(centred: np.ndarray, k: int) -> np.ndarray | None:
    """``U[:, :k] · S[:k]`` of a tall ``centred`` as ``C V`` (``V``: top-k eigenvectors of ``CᵀC``), or
    ``None`` when an eigengap among the top ``k + 1`` eigenvalues is too small for it (see :data:`GRAM_TOL`)."""
    vals, vecs = np.linalg.eigh(centred.T @ centred)  # ascending
    top = vals[::-1][: k + 1]
    gaps = top[:-1] - top[1:]
    if top[0] <= 0 or gaps.min() <= 0 or np.finfo(float).eps * top[0] / gaps.min() > GRAM_TOL:
        return None
    return centred @ vecs[:, ::-1][:, :k]


def fix_signs(scores: np.ndarray) -> np.ndarray:
    """Flip each column so that its entry of largest magnitude is positive."""
    if scores.size == 0:
        return scores
    idx = np.argmax(np.abs(scores), axis=0)
    signs = np.sign(scores[idx, np.arange(scores.shape[1])])
    signs[signs == 0] = 1.0
    return scores * signs
