"""The bilinear ridge model ``Y ≈ A K B`` (paper ``solve_y_axb``, SPEC section 5)."""

from __future__ import annotations

import numpy as np

__all__ = ["solve_y_axb", "predict"]


def solve_y_axb(
    y: np.ndarray, a: np.ndarray, b: np.ndarray, ridge: float, center: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge solution ``K = (AᵀA + λI)⁻¹ Aᵀ Yc Bᵀ (BBᵀ + λI)⁻¹``.

    Parameters
    ----------
    y
        genes × conditions training responses.
    a, b
        Gene embedding (genes × d_A) and perturbation embedding (d_B × conditions).
    ridge
        Penalty λ on both sides.
    center
        Row centre subtracted from ``y``; ``None`` uses ``rowMeans(y)`` as the paper does.

    Returns
    -------
    (K, center)
    """
    center = y.mean(axis=1) if center is None else np.asarray(center, dtype=np.float64)
    yc = y - center[:, None]
    left = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ yc @ b.T)
    k = np.linalg.solve(b @ b.T + ridge * np.eye(b.shape[0]), left.T).T  # (BBᵀ + λI) is symmetric
    return k, center


def predict(a: np.ndarray, k: np.ndarray, b: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Predicted changes ``A K B + center`` (genes × columns of ``b``)."""
    return a @ (k @ b) + center[:, None]
