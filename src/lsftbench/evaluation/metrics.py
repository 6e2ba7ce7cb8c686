"""Per-perturbation metrics on expression changes Δ (SPEC section 7).

Every function takes genes × perturbations matrices (one column per perturbation) and is vectorised
over the columns. The per-perturbation metrics work through the perturbations in blocks that stay in
cache, each perturbation's genes contiguous; they are fastest on Fortran-ordered inputs (columns
contiguous), which is how the fit and LSFT jobs hold their predictions. The module imports pandas
only where a function returns a data frame (the fit and LSFT jobs use :func:`metric_columns`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "pearson_columns",
    "centered_pearson_columns",
    "l2_columns",
    "perturbation_metrics",
    "metric_columns",
    "METRICS",
    "rank_metrics",
    "mode_collapse",
    "RANK_DISTANCES",
]

METRICS = ("pearson_r", "l2", "pearson_delta_top1000", "l2_top1000")
RANK_DISTANCES = ("l2", "cosine")

#: Bytes of one perturbations × block distance matrix in :func:`rank_metrics` (blocks over columns).
_RANK_BLOCK_BYTES = 64 << 20
#: Two distances closer than this (relative to the norms they are computed from) are a tie: the
#: Gram-matrix expansion rounds identical predictions (e.g. a constant one) to slightly different
#: values depending on their position in the BLAS blocks; rounding is ~1e-15 relative.
_TIE_RTOL = 1e-10


#: Bytes of one block of perturbations (rows of a transposed input) in the per-perturbation metrics.
_METRIC_BLOCK_BYTES = 1 << 18


def _row_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a * b).sum(axis=1)`` without the temporary."""
    return np.einsum("ij,ij->i", a, b)


def _column_blocks(pred: np.ndarray, obs: np.ndarray) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Blocks of matching columns of ``pred`` and ``obs``, each transposed to C order (perturbations × genes)."""
    pred, obs = np.asarray(pred, dtype=np.float64), np.asarray(obs, dtype=np.float64)
    if pred.shape != obs.shape:
        raise ValueError(f"pred {pred.shape} and obs {obs.shape} differ in shape")
    n_cols = pred.shape[1]
    step = max(1, _METRIC_BLOCK_BYTES // max(8 * pred.shape[0], 1))
    for a in range(0, n_cols, step):
        s = slice(a, min(a + step, n_cols))
        yield s, np.ascontiguousarray(pred[:, s].T), np.ascontiguousarray(obs[:, s].T)


def _training_mean(m: np.ndarray, n_genes: int) -> np.ndarray:
    """``m`` as a float64 vector of ``n_genes`` values (ValueError otherwise)."""
    m = np.asarray(m, dtype=np.float64).ravel()
    if m.shape[0] != n_genes:
        raise ValueError(f"training mean has {m.shape[0]} genes, predictions {n_genes}")
    return m


def _pearson_rows(pred: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Pearson r between matching rows of two C-contiguous blocks (NaN where a row is constant)."""
    pc = pred - pred.mean(axis=1, keepdims=True)
    oc = obs - obs.mean(axis=1, keepdims=True)
    denom = np.sqrt(_row_dots(pc, pc) * _row_dots(oc, oc))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, _row_dots(pc, oc) / np.where(denom > 0, denom, 1.0), np.nan)


def _l2_rows(pred: np.ndarray, obs: np.ndarray) -> np.ndarray:
    diff = pred - obs
    return np.sqrt(_row_dots(diff, diff))


def _by_blocks(func: Callable[[np.ndarray, np.ndarray], np.ndarray], pred: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """``func`` on the :func:`_column_blocks` of ``pred`` and ``obs``, one value per column."""
    out = np.empty(np.shape(pred)[1])
    for s, pb, ob in _column_blocks(pred, obs):
        out[s] = func(pb, ob)
    return out


def pearson_columns(pred: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Pearson r between matching columns (NaN where a column is constant)."""
    return _by_blocks(_pearson_rows, pred, obs)


def centered_pearson_columns(pred: np.ndarray, obs: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Pearson r of ``(Δ̂ − m)`` vs ``(Δ − m)`` for matching columns (SPEC 7, systematic-variation control).

    Parameters
    ----------
    pred, obs
        genes × perturbations predicted and observed changes.
    m
        Mean Δ of the training perturbations (``ctrl`` excluded) on the same genes (length genes).

    Returns
    -------
    numpy.ndarray
        One r per column; NaN where either centred column is constant (e.g. the train-mean prediction).
    """
    m = _training_mean(m, np.shape(pred)[0])
    return _by_blocks(lambda p, o: _pearson_rows(p - m, o - m), pred, obs)


def l2_columns(pred: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Euclidean distance between matching columns."""
    return _by_blocks(_l2_rows, pred, obs)


def metric_columns(
    pred: np.ndarray, obs: np.ndarray, top_idx: np.ndarray, m: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """``pearson_r``, ``l2`` over all genes and over ``top_idx`` genes, one value per column.

    With ``m`` (the training mean Δ on the same genes) ``centered_pearson_r`` is added
    (:func:`centered_pearson_columns`). The same numbers as the single-metric functions, in one pass
    over the inputs.
    """
    n_genes, p = np.shape(pred)
    names = ["pearson_r", "l2", "pearson_delta_top1000", "l2_top1000"] + (["centered_pearson_r"] if m is not None else [])
    out = {name: np.empty(p) for name in names}
    if m is not None:
        m = _training_mean(m, n_genes)
    top_idx = np.asarray(top_idx)
    for s, pb, ob in _column_blocks(pred, obs):
        out["pearson_r"][s] = _pearson_rows(pb, ob)
        out["l2"][s] = _l2_rows(pb, ob)
        pt, ot = pb[:, top_idx], ob[:, top_idx]
        out["pearson_delta_top1000"][s] = _pearson_rows(pt, ot)
        out["l2_top1000"][s] = _l2_rows(pt, ot)
        if m is not None:
            out["centered_pearson_r"][s] = _pearson_rows(pb - m, ob - m)
    return out


def perturbation_metrics(
    pred: np.ndarray, obs: np.ndarray, top_idx: np.ndarray, m: np.ndarray | None = None
) -> pd.DataFrame:
    """:func:`metric_columns` as a data frame, one row per column."""
    import pandas as pd  # noqa: PLC0415 - see the module docstring

    return pd.DataFrame(metric_columns(pred, obs, top_idx, m))


def rank_metrics(
    pred: np.ndarray,
    obs: np.ndarray,
    distance: Literal["l2", "cosine"] = "l2",
    ties: Literal["le", "mid"] = "le",
    block_columns: int | None = None,
) -> pd.DataFrame:
    """PerturBench rank and transposed rank (0 perfect, 0.5 random), SPEC 7.

    ``rank_i = 1/(p−1) Σ_{j≠i} 1[d(x̂_j, x_i) ≤ d(x̂_i, x_i)]``: the share of other perturbations'
    predictions at least as close to observation ``i`` as its own prediction. The transposed rank
    swaps the roles (``d(x̂_i, x_j) ≤ d(x̂_i, x_i)``: the share of other observations at least as
    close to prediction ``i``); a model that predicts (nearly) the same profile for every
    perturbation has a mean transposed rank of ≈ 0.5 (:func:`mode_collapse`).

    Parameters
    ----------
    pred, obs
        genes × p predicted and observed changes Δ.
    distance
        ``"l2"`` (Euclidean, default) or ``"cosine"`` (``1 − cos``; NaN for a zero vector, which is
        then left out of the comparisons and gets a NaN rank itself).
    ties
        ``"le"`` counts a tie as worse (SPEC's ``≤``: a constant prediction has rank 1);
        ``"mid"`` counts it one half (a constant prediction has rank 0.5).
    block_columns
        Observations per block (default: a p × block float64 matrix of ~64 MB); memory is
        O(p · block), time O(genes · p²).

    Returns
    -------
    pandas.DataFrame
        ``rank`` and ``rank_transposed``, one row per perturbation (NaN when p < 2).
    """
    if distance not in RANK_DISTANCES:
        raise ValueError(f"distance must be one of {RANK_DISTANCES}, got {distance!r}")
    if ties not in ("le", "mid"):
        raise ValueError(f"ties must be 'le' or 'mid', got {ties!r}")
    pred = np.asarray(pred, dtype=np.float64)
    obs = np.asarray(obs, dtype=np.float64)
    if pred.shape != obs.shape:
        raise ValueError(f"pred {pred.shape} and obs {obs.shape} differ in shape")
    p = pred.shape[1]
    import pandas as pd  # noqa: PLC0415 - see the module docstring

    if p < 2:
        return pd.DataFrame({"rank": np.full(p, np.nan), "rank_transposed": np.full(p, np.nan)})
    pred_n, obs_n, own = _rank_inputs(pred, obs, distance)
    block = block_columns or max(1, _RANK_BLOCK_BYTES // (8 * p))
    below, tied, valid = (np.zeros(p) for _ in range(3))  # per observation i (rank)
    below_t, tied_t, valid_t = (np.zeros(p) for _ in range(3))  # per prediction j (transposed)
    rows = np.arange(p)
    for a in range(0, p, block):
        cols = np.arange(a, min(a + block, p))
        dist, tol = _distance_block(pred, obs, pred_n, obs_n, cols, distance)  # dist[j, k] = d(x̂_j, x_{cols[k]})
        dist[cols, np.arange(len(cols))] = np.nan  # j ≠ i
        ok = np.isfinite(dist)
        # rank: column k against own[cols[k]]; transposed: row j against own[j]
        for own_ref, axis, acc in ((own[cols][None, :], 0, (below, tied, valid)),
                                   (own[:, None], 1, (below_t, tied_t, valid_t))):
            lt = dist < own_ref - tol
            eq = ok & ~lt & (dist <= own_ref + tol)
            idx = cols if axis == 0 else rows
            acc[0][idx] += lt.sum(axis=axis)
            acc[1][idx] += eq.sum(axis=axis)
            acc[2][idx] += ok.sum(axis=axis)
    weight = 1.0 if ties == "le" else 0.5
    with np.errstate(invalid="ignore", divide="ignore"):
        rank = np.where(np.isfinite(own) & (valid > 0), (below + weight * tied) / valid, np.nan)
        rank_t = np.where(np.isfinite(own) & (valid_t > 0), (below_t + weight * tied_t) / valid_t, np.nan)
    return pd.DataFrame({"rank": rank, "rank_transposed": rank_t})


def _rank_inputs(pred: np.ndarray, obs: np.ndarray, distance: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column norms (squared norms for L2, norms for cosine) and each column's own distance."""
    cross = np.einsum("gi,gi->i", pred, obs)
    if distance == "l2":
        pred_n, obs_n = np.einsum("gi,gi->i", pred, pred), np.einsum("gi,gi->i", obs, obs)
        return pred_n, obs_n, pred_n + obs_n - 2 * cross
    pred_n, obs_n = np.linalg.norm(pred, axis=0), np.linalg.norm(obs, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        own = 1.0 - cross / (pred_n * obs_n)
    own[(pred_n == 0) | (obs_n == 0)] = np.nan
    return pred_n, obs_n, own


def _distance_block(
    pred: np.ndarray, obs: np.ndarray, pred_n: np.ndarray, obs_n: np.ndarray, cols: np.ndarray, distance: str
) -> tuple[np.ndarray, np.ndarray]:
    """Distances ``d(x̂_j, x_i)`` for all ``j`` and ``i ∈ cols`` (squared for L2) and their tie tolerance."""
    cross = pred.T @ obs[:, cols]
    if distance == "l2":
        scale = pred_n[:, None] + obs_n[None, cols]
        return scale - 2 * cross, _TIE_RTOL * scale
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = 1.0 - cross / (pred_n[:, None] * obs_n[None, cols])
    dist[~np.isfinite(dist)] = np.nan
    return dist, np.full((1, 1), _TIE_RTOL)


def mode_collapse(mean_rank: float | np.ndarray, margin: float = 0.05) -> bool | np.ndarray:
    """True where a mean rank lies within ``margin`` of 0.5 (no better than random).

    Applied to the mean *transposed* rank this is the mode-collapse check: a model predicting the
    same profile for every perturbation scores 0.5 whatever its distance to the observations.
    Applied to the mean rank it flags predictions that do not tell perturbations apart. NaN → False.
    """
    if margin < 0:
        raise ValueError(f"margin must be non-negative, got {margin}")
    flag = np.abs(np.asarray(mean_rank, dtype=np.float64) - 0.5) <= margin
    return bool(flag) if flag.ndim == 0 else flag
