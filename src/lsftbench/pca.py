"""Principal-component scores as used by the paper (``irlba::prcomp_irlba(x, n = d)$x``)."""

from __future__ import annotations

import numpy as np

__all__ = ["pca_scores", "fix_signs"]

# Above this size (smaller side) a truncated Lanczos SVD replaces the full one when few components
# are wanted; ARPACK is run to machine precision, so the scores agree to rounding error.
_TRUNCATED_MIN_SIDE = 1000


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
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    return fix_signs(u[:, :k] * s[:k])


def fix_signs(scores: np.ndarray) -> np.ndarray:
    """Flip each column so that its entry of largest magnitude is positive."""
    if scores.size == 0:
        return scores
    idx = np.argmax(np.abs(scores), axis=0)
    signs = np.sign(scores[idx, np.arange(scores.shape[1])])
    signs[signs == 0] = 1.0
    return scores * signs
