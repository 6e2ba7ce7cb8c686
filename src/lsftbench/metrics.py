"""Per-perturbation metrics on expression changes Δ (SPEC section 7)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["pearson_columns", "l2_columns", "top_expressed", "perturbation_metrics", "METRICS", "rank_metrics"]

METRICS = ("pearson_r", "l2", "pearson_delta_top1000", "l2_top1000")


def pearson_columns(pred: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Pearson r between matching columns (NaN where a column is constant)."""
    pc = pred - pred.mean(axis=0)
    oc = obs - obs.mean(axis=0)
    denom = np.sqrt((pc**2).sum(axis=0) * (oc**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (pc * oc).sum(axis=0) / np.where(denom > 0, denom, 1.0), np.nan)


def l2_columns(pred: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Euclidean distance between matching columns."""
    return np.sqrt(((pred - obs) ** 2).sum(axis=0))


def top_expressed(ctrl_mean: np.ndarray, n: int = 1000) -> np.ndarray:
    """Indices of the ``n`` genes with the highest control mean (stable for ties)."""
    order = np.argsort(-np.asarray(ctrl_mean), kind="stable")
    return np.sort(order[: min(n, len(order))])


def perturbation_metrics(pred: np.ndarray, obs: np.ndarray, top_idx: np.ndarray) -> pd.DataFrame:
    """``pearson_r``, ``l2`` over all genes and over ``top_idx`` genes, one row per column."""
    return pd.DataFrame(
        {
            "pearson_r": pearson_columns(pred, obs),
            "l2": l2_columns(pred, obs),
            "pearson_delta_top1000": pearson_columns(pred[top_idx], obs[top_idx]),
            "l2_top1000": l2_columns(pred[top_idx], obs[top_idx]),
        }
    )


def rank_metrics(pred: np.ndarray, obs: np.ndarray) -> pd.DataFrame:
    """PerturBench rank and transposed rank (0 perfect, 0.5 random), Euclidean distance.

    ``rank_i = 1/(p−1) Σ_{j≠i} 1[d(x̂_j, x_i) ≤ d(x̂_i, x_i)]``; the transposed rank swaps the roles
    (``d(x̂_i, x_j) ≤ d(x̂_i, x_i)``) and flags mode collapse.
    """
    p = pred.shape[1]
    if p < 2:
        return pd.DataFrame({"rank": np.full(p, np.nan), "rank_transposed": np.full(p, np.nan)})
    # dist[j, i] = d(x̂_j, x_i)
    sq = (pred**2).sum(0)[:, None] + (obs**2).sum(0)[None, :] - 2 * pred.T @ obs
    dist = np.sqrt(np.maximum(sq, 0))
    own = np.diag(dist)
    rank = ((dist <= own[None, :]).sum(axis=0) - 1) / (p - 1)
    rank_t = ((dist <= own[:, None]).sum(axis=1) - 1) / (p - 1)
    return pd.DataFrame({"rank": rank, "rank_transposed": rank_t})
