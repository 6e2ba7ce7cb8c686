"""Per-perturbation metrics on expression changes Δ (SPEC section 7).

Every function takes genes × perturbations matrices (one column per perturbation) and is vectorised
over the columns. The per-perturbation metrics work through the perturbations in blocks that stay in
cache, each perturbation's genes contiguous; they are fastest on Fortran-ordered inputs (columns
contiguous), which is how the fit and LSFT jobs hold their predictions. The module imports pandas
only where a function returns a data frame (the fit and LSFT jobs use :func:`metric_columns`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
    "discrimination_scores",
    "DS_DISTANCES",
    "spread_ratio",
    "mean_pairwise_distance",
    "comparison_metrics",
    "COMPARISON_COLUMNS",
    "RANK_DISTANCES",
]

METRICS = ("pearson_r", "l2", "pearson_delta_top1000", "l2_top1000", "mae")
RANK_DISTANCES = ("l2", "cosine")
#: Distances of the discrimination score (cell-eval's ``discrimination_score_{l1,l2,cosine}``).
DS_DISTANCES = ("l1", "l2", "cosine")

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
    for s, pred_rows, obs_rows in _column_blocks(pred, obs):
        out[s] = func(pred_rows, obs_rows)
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


def _exclusion_mask(exclude: np.ndarray | None, rows: slice, n_genes: int) -> np.ndarray | None:
    """0/1 weights (perturbations of ``rows`` × genes) that drop each perturbation's excluded genes, or ``None``."""
    if exclude is None:
        return None
    ex = exclude[rows]
    w = np.ones((ex.shape[0], n_genes))
    for k in range(ex.shape[1]):
        hit = np.flatnonzero(ex[:, k] >= 0)
        w[hit, ex[hit, k]] = 0.0
    return w


def _weighted_pearson_rows(pred: np.ndarray, obs: np.ndarray, w: np.ndarray) -> np.ndarray:
    """:func:`_pearson_rows` over the genes with weight 1 of each row (``w`` is 0/1)."""
    n = w.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        pc = (pred - _row_dots(pred, w)[:, None] / n) * w
        oc = (obs - _row_dots(obs, w)[:, None] / n) * w
        denom = np.sqrt(_row_dots(pc, pc) * _row_dots(oc, oc))
        return np.where(denom > 0, _row_dots(pc, oc) / np.where(denom > 0, denom, 1.0), np.nan)


def _exclusion_rows(exclude: np.ndarray | None, n_cols: int) -> np.ndarray | None:
    """``exclude`` as an int array (columns × k, ``-1`` padding), or ``None`` when nothing is excluded."""
    if exclude is None:
        return None
    ex = np.asarray(exclude, dtype=np.int64).reshape(n_cols, -1)
    return ex if (ex >= 0).any() else None


def metric_columns(
    pred: np.ndarray,
    obs: np.ndarray,
    top_idx: np.ndarray,
    m: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """``pearson_r``, ``l2`` over all genes and over ``top_idx`` genes, and ``mae``, one value per column.

    With ``m`` (the training mean Δ on the same genes) ``centered_pearson_r`` is added
    (:func:`centered_pearson_columns`). ``mae`` is the mean absolute difference over genes (cell-eval's
    ``mae``). ``exclude`` (columns × k gene rows, ``-1`` padding, e.g. from
    :func:`lsftbench.data.conditions.target_positions`) leaves those genes out of that column's every
    metric (SPEC 7, ``metrics.exclude_target_gene``). The same numbers as the single-metric functions,
    in one pass over the inputs.
    """
    n_genes, p = np.shape(pred)
    names = ["pearson_r", "l2", "pearson_delta_top1000", "l2_top1000"] + (["centered_pearson_r"] if m is not None else [])
    names.append("mae")
    out = {name: np.empty(p) for name in names}
    if m is not None:
        m = _training_mean(m, n_genes)
    top_idx = np.asarray(top_idx)
    exclude = _exclusion_rows(exclude, p)
    for s, pred_rows, obs_rows in _column_blocks(pred, obs):
        w = _exclusion_mask(exclude, s, n_genes)
        if w is None:
            out["pearson_r"][s] = _pearson_rows(pred_rows, obs_rows)
            out["l2"][s] = _l2_rows(pred_rows, obs_rows)
            pt, ot = pred_rows[:, top_idx], obs_rows[:, top_idx]
            out["pearson_delta_top1000"][s] = _pearson_rows(pt, ot)
            out["l2_top1000"][s] = _l2_rows(pt, ot)
            if m is not None:
                out["centered_pearson_r"][s] = _pearson_rows(pred_rows - m, obs_rows - m)
            out["mae"][s] = np.abs(pred_rows - obs_rows).sum(axis=1) / n_genes
            continue
        diff = pred_rows - obs_rows
        out["pearson_r"][s] = _weighted_pearson_rows(pred_rows, obs_rows, w)
        out["l2"][s] = np.sqrt(_row_dots(diff * w, diff))
        wt = w[:, top_idx]
        out["pearson_delta_top1000"][s] = _weighted_pearson_rows(pred_rows[:, top_idx], obs_rows[:, top_idx], wt)
        out["l2_top1000"][s] = np.sqrt(_row_dots(diff[:, top_idx] * wt, diff[:, top_idx]))
        if m is not None:
            out["centered_pearson_r"][s] = _weighted_pearson_rows(pred_rows - m, obs_rows - m, w)
        out["mae"][s] = _row_dots(np.abs(diff), w) / w.sum(axis=1)
    return out


def perturbation_metrics(
    pred: np.ndarray,
    obs: np.ndarray,
    top_idx: np.ndarray,
    m: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
) -> pd.DataFrame:
    """:func:`metric_columns` as a data frame, one row per column."""
    import pandas as pd  # noqa: PLC0415 - see the module docstring

    return pd.DataFrame(metric_columns(pred, obs, top_idx, m, exclude))


def rank_metrics(
    pred: np.ndarray,
    obs: np.ndarray,
    distance: Literal["l2", "cosine"] = "l2",
    ties: Literal["le", "mid"] = "le",
    block_columns: int | None = None,
    exclude: np.ndarray | None = None,
) -> pd.DataFrame:
    """PerturBench rank and transposed rank (0 perfect, 0.5 random), SPEC 7.

    ``rank_i = 1/(p−1) Σ_{j≠i} 1[d(x̂_j, x_i) ≤ d(x̂_i, x_i)]``: the share of other perturbations'
    predictions at least as close to observation ``i`` as its own prediction. The transposed rank
    swaps the roles (``d(x̂_i, x_j) ≤ d(x̂_i, x_i)``: the share of other observations at least as
    close to prediction ``i``). A model that predicts (nearly) the same profile for every
    perturbation has a mean transposed rank of ≈ 0.5, but so does any model on hard data: mode collapse
    is told by :func:`spread_ratio` instead.

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
    exclude
        Gene rows to leave out per perturbation (p × k, ``-1`` padding; ``metrics.exclude_target_gene``):
        every distance to observation ``i`` (rank) and from prediction ``i`` (transposed rank) is taken
        without perturbation ``i``'s target gene(s).

    Returns
    -------
    pandas.DataFrame
        ``rank`` and ``rank_transposed``, one row per perturbation (NaN when p < 2).
    """
    if distance not in RANK_DISTANCES:
        raise ValueError(f"distance must be one of {RANK_DISTANCES}, got {distance!r}")
    if ties not in ("le", "mid"):
        raise ValueError(f"ties must be 'le' or 'mid', got {ties!r}")
    pred, obs = _checked_pair(pred, obs)
    import pandas as pd  # noqa: PLC0415 - see the module docstring

    rank, rank_t = _rank_columns(pred, obs, distance, ties, block_columns, exclude, _CrossProducts(pred, obs))
    return pd.DataFrame({"rank": rank, "rank_transposed": rank_t})


def _checked_pair(pred: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    obs = np.asarray(obs, dtype=np.float64)
    if pred.shape != obs.shape:
        raise ValueError(f"pred {pred.shape} and obs {obs.shape} differ in shape")
    return pred, obs


def _rank_columns(
    pred: np.ndarray,
    obs: np.ndarray,
    distance: str,
    ties: str,
    block_columns: int | None,
    exclude: np.ndarray | None,
    cross: _CrossProducts,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rank_metrics`' two columns, with the products ``x̂_jᵀ x_i`` taken from ``cross``."""
    p = pred.shape[1]
    if p < 2:
        return np.full(p, np.nan), np.full(p, np.nan)
    exclude = _exclusion_rows(exclude, p)
    if exclude is not None:
        pairs = _PairDistances(pred, obs, exclude, cross)
    pred_n, obs_n, own = _rank_inputs(pred, obs, distance) if exclude is None else (None, None, pairs.own(distance))
    block = block_columns or max(1, _RANK_BLOCK_BYTES // (8 * p))
    below, tied, valid = (np.zeros(p) for _ in range(3))  # per observation i (rank)
    below_t, tied_t, valid_t = (np.zeros(p) for _ in range(3))  # per prediction j (transposed)
    rows = np.arange(p)
    for a in range(0, p, block):
        cols = np.arange(a, min(a + block, p))
        if exclude is None:
            dist, tol = _distance_block(cross(rows, cols), pred_n, obs_n, cols, distance)  # d(x̂_j, x_{cols[k]})
            dists = (dist, dist)
        else:  # rank: without observation i's targets (column); transposed: without prediction j's (row)
            dists, tol = (pairs.block(rows, cols, distance, by) for by in ("col", "row")), pairs.tolerance(rows, cols, distance)
            dists = tuple(dists)
        for dist in dists:
            dist[cols, np.arange(len(cols))] = np.nan  # j ≠ i
        # rank: column k against own[cols[k]]; transposed: row j against own[j]
        for dist, own_ref, axis, acc in ((dists[0], own[cols][None, :], 0, (below, tied, valid)),
                                         (dists[1], own[:, None], 1, (below_t, tied_t, valid_t))):
            ok = np.isfinite(dist)
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
    return rank, rank_t


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


class _CrossProducts:
    """The products ``x̂_jᵀ x_i`` of predictions (columns of ``pred``) and observations (of ``obs``).

    Asked for every pair, the p × p matrix is computed once and kept, so the rank metrics and the
    discrimination scores of one method (:func:`comparison_metrics`) share one matrix product; a block
    of columns of a larger problem (the rank metrics' memory bound) is computed on its own. ``rows`` and
    ``cols`` are increasing positions without repeats.
    """

    def __init__(self, pred: np.ndarray, obs: np.ndarray) -> None:
        self.pred, self.obs = pred, obs
        self._full: np.ndarray | None = None

    def __call__(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        p = self.pred.shape[1]
        if self._full is None and len(rows) == p and len(cols) == p:
            self._full = np.ascontiguousarray(self.pred).T @ np.ascontiguousarray(self.obs)
        if self._full is None:
            return (self.pred if len(rows) == p else self.pred[:, rows]).T @ self.obs[:, cols]
        if len(rows) == p and len(cols) == p:
            return self._full
        return self._full[np.ix_(rows, cols)]


def _distance_block(
    cross: np.ndarray, pred_n: np.ndarray, obs_n: np.ndarray, cols: np.ndarray, distance: str
) -> tuple[np.ndarray, np.ndarray]:
    """Distances ``d(x̂_j, x_i)`` for all ``j`` and ``i ∈ cols`` (squared for L2) from their products
    ``cross`` (``x̂_jᵀ x_i``), and their tie tolerance."""
    if distance == "l2":
        scale = pred_n[:, None] + obs_n[None, cols]
        return scale - 2 * cross, _TIE_RTOL * scale
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = 1.0 - cross / (pred_n[:, None] * obs_n[None, cols])
    dist[~np.isfinite(dist)] = np.nan
    return dist, np.full((1, 1), _TIE_RTOL)


class _PairDistances:
    """Distances between predictions (columns of ``pred``) and observations (of ``obs``) without the
    excluded genes of one side's perturbation (``exclude``: p × k gene rows, ``-1`` padding).

    Blocks are formed from the full products and corrected by the excluded genes' terms, so the work
    stays one matrix product per block. L2 distances are squared; cosine is ``1 − cos`` (NaN for a zero vector).
    """

    def __init__(self, pred: np.ndarray, obs: np.ndarray, exclude: np.ndarray | None, cross: _CrossProducts) -> None:
        self.pred, self.obs, self.cross = pred, obs, cross
        p = pred.shape[1]
        self.ex = np.full((p, 0), -1, dtype=np.int64) if exclude is None else exclude
        self.pn2, self.on2 = np.einsum("gi,gi->i", pred, pred), np.einsum("gi,gi->i", obs, obs)
        self._w: np.ndarray | None = None

    def _terms(self, rows: np.ndarray, cols: np.ndarray, by: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Σ over the excluded genes of x̂x, x̂², x² for each (row, col) pair: the genes of the column's
        perturbation (``by="col"``) or the row's (``by="row"``)."""
        shape = (len(rows), len(cols))
        cross, p2, o2 = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        for t in range(self.ex.shape[1]):
            if by == "col":
                g = self.ex[cols, t]
                kk = np.flatnonzero(g >= 0)
                pv = self.pred[g[kk]][:, rows].T  # (rows, kk): x̂ of row j at column k's target
                ov = self.obs[g[kk], cols[kk]][None, :]
                cross[:, kk] += pv * ov
                p2[:, kk] += pv**2
                o2[:, kk] += ov**2
            else:
                g = self.ex[rows, t]
                jj = np.flatnonzero(g >= 0)
                pv = self.pred[g[jj], rows[jj]][:, None]
                ov = self.obs[g[jj]][:, cols]  # (jj, cols): x of column i at row j's target
                cross[jj] += pv * ov
                p2[jj] += pv**2
                o2[jj] += ov**2
        return cross, p2, o2

    def block(self, rows: np.ndarray, cols: np.ndarray, distance: str, by: str) -> np.ndarray:
        """``d(x̂_j, x_i)`` for ``j ∈ rows``, ``i ∈ cols`` without the ``by`` side's excluded genes."""
        if distance == "l1":
            from scipy.spatial.distance import cdist  # noqa: PLC0415 - the aggregation has SciPy anyway

            # C-contiguous rows: SciPy's fast loop (each pair still summed gene by gene in gene order, the numbers of
            # its strided loop bit for bit; 8-10x faster on a transposed view)
            x_hat, x = np.ascontiguousarray(self.pred[:, rows].T), np.ascontiguousarray(self.obs[:, cols].T)
            dist = cdist(x_hat, x, "cityblock")
            for t in range(self.ex.shape[1]):
                if by == "col":
                    g = self.ex[cols, t]
                    kk = np.flatnonzero(g >= 0)
                    dist[:, kk] -= np.abs(self.pred[g[kk]][:, rows].T - self.obs[g[kk], cols[kk]][None, :])
                else:
                    g = self.ex[rows, t]
                    jj = np.flatnonzero(g >= 0)
                    dist[jj] -= np.abs(self.pred[g[jj], rows[jj]][:, None] - self.obs[g[jj]][:, cols])
            return dist
        cross = self.cross(rows, cols)
        d_cross, d_p2, d_o2 = self._terms(rows, cols, by)
        p2, o2, cross = self.pn2[rows, None] - d_p2, self.on2[None, cols] - d_o2, cross - d_cross
        if distance == "l2":
            return p2 + o2 - 2 * cross
        with np.errstate(invalid="ignore", divide="ignore"):
            dist = 1.0 - cross / np.sqrt(p2 * o2)
        dist[~np.isfinite(dist)] = np.nan
        return dist

    def _weights(self) -> np.ndarray:
        """p × genes: 0 at each perturbation's excluded genes, else 1 (built once for every distance)."""
        if self._w is None:
            w = np.ones(self.obs.shape[1::-1])
            for t in range(self.ex.shape[1]):
                hit = np.flatnonzero(self.ex[:, t] >= 0)
                w[hit, self.ex[hit, t]] = 0.0
            self._w = w
        return self._w

    def own(self, distance: str) -> np.ndarray:
        """``d(x̂_i, x_i)`` without perturbation ``i``'s excluded genes."""
        x_hat, x = self.pred, self.obs
        w = self._weights()
        if distance == "l1":
            return np.einsum("ip,pi->p", np.abs(x_hat - x), w)
        if distance == "l2":
            diff = x_hat - x
            return np.einsum("ip,ip,pi->p", diff, diff, w)
        cross = np.einsum("ip,ip,pi->p", x_hat, x, w)
        with np.errstate(invalid="ignore", divide="ignore"):
            own = 1.0 - cross / np.sqrt(np.einsum("ip,ip,pi->p", x_hat, x_hat, w) * np.einsum("ip,ip,pi->p", x, x, w))
        own[~np.isfinite(own)] = np.nan
        return own

    def tolerance(self, rows: np.ndarray, cols: np.ndarray, distance: str) -> np.ndarray:
        """Half-width of a tie (relative to the norms the distances come from)."""
        if distance == "l2":
            return _TIE_RTOL * (self.pn2[rows, None] + self.on2[None, cols])
        if distance == "l1":
            l1 = np.abs(self.pred[:, rows]).sum(axis=0)[:, None] + np.abs(self.obs[:, cols]).sum(axis=0)[None, :]
            return _TIE_RTOL * l1
        return np.full((1, 1), _TIE_RTOL)


def discrimination_scores(
    pred: np.ndarray, obs: np.ndarray, exclude: np.ndarray | None = None, distances: tuple[str, ...] = DS_DISTANCES
) -> dict[str, np.ndarray]:
    """Discrimination score per perturbation (cell-eval 0.8.2 ``discrimination_score_{l1,l2,cosine}``; SPEC 7).

    ``DS_i = 1 − (1/p) Σ_{j≠i} 1[d(x̂_i, x_j) < d(x̂_i, x_i)]`` over the p test perturbations: 1 when
    prediction ``i`` is closer to its own observation than to any other, down to ``1/p``. Distances
    of row ``i`` leave out perturbation ``i``'s genes in ``exclude`` (p × k gene rows, ``-1``
    padding): cell-eval and the Virtual Cell Challenge leave out the target gene; distances within
    :data:`_TIE_RTOL` (relative) of the own distance count as not closer. ``l1`` is the sum of absolute
    differences, ``l2`` Euclidean, ``cosine`` ``1 − cos``. Returns ``ds_<distance>`` arrays (NaN where the
    own distance is undefined, e.g. a zero vector under cosine, or p < 2).
    """
    pred, obs = _checked_pair(pred, obs)
    unknown = set(distances) - set(DS_DISTANCES)
    if unknown:
        raise ValueError(f"distances must be among {DS_DISTANCES}, got {sorted(unknown)}")
    return _discrimination_columns(pred, obs, exclude, distances, _CrossProducts(pred, obs))


def _discrimination_columns(
    pred: np.ndarray, obs: np.ndarray, exclude: np.ndarray | None, distances: Sequence[str], cross: _CrossProducts
) -> dict[str, np.ndarray]:
    """:func:`discrimination_scores` with the products ``x̂_jᵀ x_i`` taken from ``cross``."""
    p = pred.shape[1]
    if p < 2:
        return {f"ds_{d}": np.full(p, np.nan) for d in distances}
    pairs = _PairDistances(pred, obs, _exclusion_rows(exclude, p), cross)
    idx = np.arange(p)
    out = {}
    for distance in distances:
        dist = pairs.block(idx, idx, distance, "row")  # dist[i, j] = d(x̂_i, x_j) without i's genes
        own = pairs.own(distance)
        np.fill_diagonal(dist, np.nan)
        with np.errstate(invalid="ignore"):
            closer = (dist < own[:, None] - pairs.tolerance(idx, idx, distance)).sum(axis=1)
        out[f"ds_{distance}"] = np.where(np.isfinite(own), 1.0 - closer / p, np.nan)
    return out


def mean_pairwise_distance(x: np.ndarray) -> float:
    """Mean Euclidean distance over the pairs of columns of ``x`` (genes × p; NaN for p < 2): the numerator or
    denominator of :func:`spread_ratio`."""
    x = np.asarray(x, dtype=np.float64)
    p = x.shape[1]
    if p < 2:
        return float("nan")
    sq = np.einsum("gi,gi->i", x, x)
    d2 = sq[:, None] + sq[None, :] - 2 * (x.T @ x)
    upper = np.triu_indices(p, k=1)
    return float(np.sqrt(np.clip(d2[upper], 0.0, None)).mean())


def spread_ratio(pred: np.ndarray, obs: np.ndarray, obs_spread: float | None = None) -> float:
    """Mode-collapse check (SPEC 7): mean pairwise Euclidean distance of the predictions over that of
    the observations, over the same perturbations (``mean_{i<j} ‖x̂_i − x̂_j‖ / mean_{i<j} ‖x_i − x_j‖``).

    0 for the same prediction for every perturbation, about 1 for predictions that vary as much as the
    data. NaN for fewer than two perturbations or observations that do not vary. ``obs_spread`` is
    :func:`mean_pairwise_distance` of ``obs`` when already known (methods scored on the same observations share it).
    """
    pred = np.asarray(pred, dtype=np.float64)
    if pred.shape[1] < 2:
        return float("nan")
    denominator = mean_pairwise_distance(obs) if obs_spread is None else obs_spread
    return mean_pairwise_distance(pred) / denominator if denominator > 0 else float("nan")


#: What :func:`comparison_metrics` returns per perturbation.
COMPARISON_COLUMNS = ("rank", "rank_transposed", *(f"ds_{d}" for d in DS_DISTANCES))


def comparison_metrics(
    pred: np.ndarray,
    obs: np.ndarray,
    targets: np.ndarray | None = None,
    *,
    rank_distance: Literal["l2", "cosine"] = "l2",
    exclude_target_gene: bool = False,
    obs_spread: float | None = None,
) -> tuple[dict[str, np.ndarray], float]:
    """The metrics that compare each prediction with every observation of one method's test set.

    :func:`rank_metrics` (``rank``, ``rank_transposed``; without each perturbation's target genes only
    with ``exclude_target_gene``), :func:`discrimination_scores` (``ds_l1``, ``ds_l2``, ``ds_cosine``;
    always without the target genes, as cell-eval) and :func:`spread_ratio`, with the same numbers as
    those functions: the matrix product ``predᵀ obs`` they share is computed once.

    ``targets`` are the target genes' rows per perturbation (p × k, ``-1`` padding), or ``None``;
    ``obs_spread`` as in :func:`spread_ratio`. Returns the per-perturbation columns (:data:`COMPARISON_COLUMNS`)
    and the spread ratio.
    """
    pred, obs = _checked_pair(pred, obs)
    if rank_distance not in RANK_DISTANCES:
        raise ValueError(f"distance must be one of {RANK_DISTANCES}, got {rank_distance!r}")
    cross = _CrossProducts(pred, obs)
    rank, rank_t = _rank_columns(pred, obs, rank_distance, "le", None, targets if exclude_target_gene else None, cross)
    out = {"rank": rank, "rank_transposed": rank_t, **_discrimination_columns(pred, obs, targets, DS_DISTANCES, cross)}
    return out, spread_ratio(pred, obs, obs_spread)
