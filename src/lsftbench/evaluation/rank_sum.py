"""Wilcoxon rank-sum test of every perturbation against the control cells, streamed (SPEC 7.2, "Rank-sum test").

For every non-``ctrl`` condition ``t`` and gene ``g``: the two-sided Mann–Whitney U test of ``t``'s cells against
the ``ctrl`` cells on the log-normalised ``X``, normal approximation with tie and continuity correction, i.e.
``scipy.stats.mannwhitneyu(x_t, x_ctrl, method="asymptotic", use_continuity=True, alternative="two-sided")``,
the test pdex 0.3.0 runs for cell-eval 0.8.2 (its p-values are reproduced to rounding of the normal tail).

Formula. With ``n₁`` cells of ``t``, ``n₂`` control cells, ``n = n₁ + n₂``, and the tie groups ``c_k`` of the
pooled values (zeros are one of them):

* ``U₁ = #{(i, j): x_i > y_j} + ½ #{(i, j): x_i = y_j}`` over ``t``'s cells ``i`` and control cells ``j``;
* ``σ² = n₁n₂/12 · ((n + 1) − Σ_k (c_k³ − c_k) / (n(n − 1)))``;
* ``z = (max(U₁, n₁n₂ − U₁) − n₁n₂/2 − ½) / σ`` and ``p = min(1, 2 Φ(−z))``;
* ``p = 1`` where all ``n`` values are tied (``σ = 0``; e.g. a gene that is zero in every cell of both groups).

The returned ``statistic`` is the signed standardised U, ``(U₁ − n₁n₂/2) / σ`` (no continuity correction; 0
where ``σ = 0``): positive when ``t``'s cells tend to be higher than the control cells. Its magnitude orders
genes like the p-value and still separates genes whose p-values underflow to 0.

Algorithm (exact: every count is an integer, so the result does not depend on the chunking or the batching,
bit for bit). Values are non-negative, so the zeros of a gene form its lowest tie group; only the nonzeros
need work, and ``U₁`` is a sum over ``t``'s cells given the control values:

* a nonzero is encoded as a 64-bit key: gene, the float32 bit pattern of the value (monotone for
  non-negative floats, 31 bits) and, for perturbed cells, the condition's index within its batch in the
  lowest bits; sorting the keys sorts each gene's values;
* the control cells' keys are gathered and sorted once, with per gene the number of nonzeros and
  ``Σ(a³ − a)`` over the control tie groups;
* the perturbed cells' keys (ordered by gene, value, condition) are sorted and taken in blocks of whole genes
  (~0.5 M keys); locating the control keys of a block's range in the block (``np.searchsorted`` into a
  cache-sized array) and counting them cumulatively gives, for each perturbed nonzero, the control values
  below it and equal to it; runs of equal keys are the within-condition ties; per (condition, gene) these
  are summed with ``np.bincount``;
* the zeros' contributions (``½ · zeros_t · zeros_ctrl`` to ``U₁``, the zero group to the tie term) are added
  densely per (condition, gene) of the block's genes, which are then finished.

Memory. ``X`` is read in row chunks (:func:`lsftbench.data.pseudobulk.row_chunks`), never densified; the keys
take 8 bytes per stored nonzero of the conditions gathered in one pass. Conditions are split into batches
whose keys fit ``max_bytes`` beside the control cells' keys, one pass over the file per batch (one pass when
everything fits; the control cells are gathered in the first). The number of nonzeros per condition is read
from the CSR index pointer; for a dense or CSC ``X`` every entry is counted as one (more passes, the same
result).

Values are compared as float32, the precision of GEARS files (float16 is read as float32); a float64 ``X``
whose values are not all exactly float32 is compared after rounding to float32, with a warning (distinct
values closer than ~6e-8 relative would tie). Explicitly stored zeros (and ``-0.0``) are zeros. The values
are validated like the pseudobulk's (:func:`lsftbench.data.h5ad.check_values`, :class:`~lsftbench.data.h5ad.ValueScan`).
"""

from __future__ import annotations

import logging
import os
import time
from typing import NamedTuple

import h5py
import numpy as np
import scipy.sparse as sp
from scipy.special import ndtr

from ..data.h5ad import InputDataError, ValueScan
from ..data.pseudobulk import _check_chunk, cell_index, row_chunks

__all__ = ["RankSumResult", "rank_sum_test"]

log = logging.getLogger(__name__)

#: Bits of a non-negative float32's bit pattern (the sign bit is 0).
_VALUE_BITS = 31
#: Gene and condition bits available in a key beside the value.
_INDEX_BITS = 64 - _VALUE_BITS
#: Bytes per gathered nonzero: its key (the control cells' keys are kept for every pass).
_KEY_BYTES = 8
#: Sorted keys handled at a time, whole genes (temporaries ~80 bytes per key).
_BLOCK = 1 << 19
#: (condition, gene) pairs finished at a time (temporaries ~12 × 8 bytes each).
_PAIRS = 1 << 18
_U32 = np.dtype(np.uint32)


class RankSumResult(NamedTuple):
    """Rank-sum test of every perturbation against ``ctrl`` (rows: ``conditions``, columns: ``genes``).

    ``pvalue`` is the two-sided p-value, ``statistic`` the signed standardised U, ``(U₁ − n₁n₂/2) / σ``
    (positive: the perturbation's cells are higher), both conditions × genes float64; ``n_cells`` the number
    of cells per condition. ``ctrl`` is not a row.
    """

    conditions: list[str]
    genes: list[str]
    pvalue: np.ndarray
    statistic: np.ndarray
    n_cells: np.ndarray


def rank_sum_test(
    path: str | os.PathLike[str],
    *,
    chunk_size: int = 10_000,
    max_bytes: int = 1 << 30,
    allow_raw_counts: bool = False,
) -> RankSumResult:
    """Mann–Whitney U test of every perturbation's cells against the ``ctrl`` cells, per gene, streamed.

    Parameters
    ----------
    path
        A GEARS ``perturb_processed.h5ad`` (cells × genes ``X``, log-normalised, ``obs["condition"]``); its
        metadata, the structure of ``X`` and every value are validated as by the pseudobulk.
    chunk_size
        Cells per read chunk (memory only; the result does not depend on it).
    max_bytes
        Memory budget of one pass: the keys of the gathered nonzeros, the control cells' included (the
        read buffers, the returned arrays and ~50 MB of temporaries come on top). Conditions beyond it
        are gathered in further passes over the file (the result does not depend on it).
    allow_raw_counts
        As for :func:`lsftbench.data.pseudobulk.pseudobulk`: accept values that look like raw counts.

    Returns
    -------
    RankSumResult
        ``(conditions, genes, pvalue, statistic, n_cells)``; conditions in the pseudobulk's order without
        ``ctrl``, genes as :func:`lsftbench.data.h5ad.gene_symbols` names them.

    Raises
    ------
    InputDataError
        Any problem of the file (as :func:`lsftbench.data.pseudobulk.pseudobulk`), including negative,
        NaN or infinite values.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    started = time.perf_counter()
    codes, order, genes, n_obs, n_genes = cell_index(path)
    n_cond = len(order)
    counts = np.bincount(codes, minlength=n_cond)
    stored = np.bincount(codes, weights=_stored_per_row(path, n_obs, n_genes), minlength=n_cond).astype(np.int64)
    batches = _plan_batches(stored, n_genes, max_bytes)
    pvalue = np.empty((n_cond - 1, n_genes))
    statistic = np.empty((n_cond - 1, n_genes))
    ctrl: _Control | None = None
    try:
        for first, stop in batches:
            scan = None if ctrl is not None else ValueScan(path, allow_raw_counts=allow_raw_counts)
            ctrl_keys, keys = _gather(path, codes, n_genes, chunk_size, np.arange(first, stop), stored, scan)
            if ctrl_keys is not None:  # the first pass gathers the control cells too
                ctrl = _Control(ctrl_keys, int(counts[0]), n_genes)
                del ctrl_keys
            assert ctrl is not None
            rows = slice(first - 1, stop - 1)
            _batch_statistics(keys, ctrl, counts[first:stop], pvalue[rows], statistic[rows])
            del keys
    except (OSError, RuntimeError) as err:  # h5py read failures of a damaged file
        raise InputDataError(path, f"X cannot be read ({type(err).__name__}: {err}); the file is damaged or truncated"
                             ) from err
    log.info(
        "rank-sum test of %s: %d cells, %d perturbations, %d genes, %d pass(es), %.1f s",
        path, n_obs, n_cond - 1, n_genes, len(batches), time.perf_counter() - started,
    )
    return RankSumResult(order[1:], [str(g) for g in genes], pvalue, statistic, counts[1:].copy())


def _stored_per_row(path: str | os.PathLike[str], n_obs: int, n_genes: int) -> np.ndarray:
    """Stored entries per cell: from the CSR index pointer, else ``n_genes`` (an upper bound of the nonzeros)."""
    with h5py.File(path, "r") as f:
        x = f["X"]
        encoding = x.attrs.get("encoding-type", "")
        if isinstance(encoding, bytes):
            encoding = encoding.decode()
        if encoding == "csr_matrix":
            return np.diff(np.asarray(x["indptr"][...], dtype=np.int64)).astype(np.float64)
    return np.full(n_obs, float(n_genes))


def _plan_batches(stored: np.ndarray, n_genes: int, max_bytes: int) -> list[tuple[int, int]]:
    """Ranges ``(first, stop)`` of consecutive perturbations (condition indices ≥ 1) whose gathered keys fit
    ``max_bytes`` beside the control cells' keys; at least one perturbation per range, and no more than the
    keys' condition bits can index. One empty range when there is no perturbation."""
    gene_bits = int(n_genes - 1).bit_length()
    if gene_bits > _INDEX_BITS:
        raise ValueError(f"{n_genes} genes do not fit a 64-bit key")
    max_conditions = 1 << (_INDEX_BITS - gene_bits)
    budget = max_bytes - _KEY_BYTES * int(stored[0])
    cost = _KEY_BYTES * stored
    batches, first, used = [], 1, 0
    for c in range(1, len(stored)):
        if c > first and (used + cost[c] > budget or c - first >= max_conditions):
            batches.append((first, c))
            first, used = c, 0
        used += cost[c]
    batches.append((first, len(stored)))
    return batches


def _gather(
    path: str | os.PathLike[str],
    codes: np.ndarray,
    n_genes: int,
    chunk_size: int,
    batch: np.ndarray,
    stored: np.ndarray,
    scan: ValueScan | None,
) -> tuple[np.ndarray | None, np.ndarray]:
    """One pass over ``X``: the nonzero keys of the conditions ``batch`` and, on the first pass (``scan`` given),
    of the control cells, with every chunk validated on the way (:func:`lsftbench.data.h5ad.check_values`).

    Returns
    -------
    ctrl_keys, keys
        Control keys ``gene << 31 | bits`` (``None`` unless gathered) and the batch's keys
        ``gene << (31 + b) | bits << b | local condition`` (``b`` bits for the batch's conditions).
    """
    n_obs = len(codes)
    local = np.full(len(stored), -1, dtype=np.int64)
    local[batch] = np.arange(len(batch))
    targets = [_Keys(local, int(stored[batch].sum()), _condition_bits(len(batch)))]
    if scan is not None:
        ctrl_local = np.full(len(stored), -1, dtype=np.int64)
        ctrl_local[0] = 0
        targets.append(_Keys(ctrl_local, int(stored[0]), 0))
    for start, block in row_chunks(path, n_obs, n_genes, chunk_size):
        if scan is not None:
            _check_chunk(block, path, start, scan)
        csr = block if sp.issparse(block) else sp.csr_matrix(block)
        chunk_codes = codes[start : start + csr.shape[0]]
        for target in targets:
            target.add(csr, chunk_codes, path)
    if scan is None:
        return None, targets[0].result()
    scan.finish(n_obs, n_genes)
    return targets[1].result(), targets[0].result()


class _Keys:
    """The nonzero keys of some conditions' cells, filled chunk by chunk into one preallocated array.

    ``local`` maps condition codes to the condition's index in the lowest ``t_bits`` bits (``-1``: not
    gathered); ``size`` bounds the number of nonzeros (the stored entries of those conditions).
    """

    def __init__(self, local: np.ndarray, size: int, t_bits: int) -> None:
        self.local, self.t_bits = local, t_bits
        self.keys = np.empty(size, dtype=np.uint64)
        self.n = 0
        self.rounded = False

    def add(self, block: sp.csr_matrix, chunk_codes: np.ndarray, path: str | os.PathLike[str]) -> None:
        """Append the keys of the block's rows that belong to gathered conditions."""
        row_t = self.local[chunk_codes]
        rows = np.flatnonzero(row_t >= 0)
        if not rows.size:
            return
        if rows.size < block.shape[0]:
            block, row_t = block[rows], row_t[rows]
        indptr = block.indptr
        row_nnz = np.diff(indptr)
        a = 0
        while a < block.shape[0]:  # row ranges of ~_BLOCK stored values
            b = int(np.searchsorted(indptr, indptr[a] + _BLOCK, side="right")) - 1
            b = min(max(b, a + 1), block.shape[0])
            lo, hi = int(indptr[a]), int(indptr[b])
            if hi > lo:
                self._append(block.data[lo:hi], block.indices[lo:hi], np.repeat(row_t[a:b], row_nnz[a:b]), path)
            a = b

    def _append(self, values: np.ndarray, genes: np.ndarray, t: np.ndarray, path: str | os.PathLike[str]) -> None:
        bits = self._float32_bits(values, path)
        nonzero = values != 0  # explicitly stored zeros (and -0.0) are zeros
        if not nonzero.all():
            bits, genes, t = bits[nonzero], genes[nonzero], t[nonzero]
        out = self.keys[self.n : self.n + len(bits)]
        out[:] = genes
        out <<= np.uint64(_VALUE_BITS + self.t_bits)
        value_part = bits.astype(np.uint64)
        if self.t_bits:
            value_part <<= np.uint64(self.t_bits)
            value_part |= t.astype(np.uint64)
        out |= value_part
        self.n += len(bits)

    def _float32_bits(self, values: np.ndarray, path: str | os.PathLike[str]) -> np.ndarray:
        """The float32 bit patterns of ``values`` (rounded from another dtype, with one warning if inexact)."""
        if values.dtype == np.float32:
            return values.view(_U32)
        rounded = values.astype(np.float32)
        if not self.rounded and np.any(rounded != values):
            self.rounded = True
            log.warning(
                "%s: X is %s and some values are not exactly float32; the rank-sum test compares them as float32 "
                "(values closer than ~6e-8 relative tie)", path, values.dtype,
            )
        return rounded.view(_U32)

    def result(self) -> np.ndarray:
        return self.keys[: self.n]


class _Control:
    """The control cells' sorted nonzero keys (``gene << 31 | bits``) and their per-gene summaries.

    ``nnz`` and ``start``: nonzeros per gene and the position of each gene's first key; ``tie``:
    ``Σ(a³ − a)`` over the gene's tie groups of nonzero control values (float64, exact integers).
    """

    def __init__(self, keys: np.ndarray, n_cells: int, n_genes: int) -> None:
        keys.sort()
        self.keys, self.n_cells = keys, n_cells
        gene = (keys >> np.uint64(_VALUE_BITS)).astype(np.int64)
        self.nnz = np.bincount(gene, minlength=n_genes)
        self.start = np.concatenate([[0], np.cumsum(self.nnz)[:-1]])
        runs = _run_starts(keys)
        size = np.diff(np.append(runs, len(keys)))
        tied = size > 1
        self.tie = np.bincount(gene[runs[tied]], weights=_cube_minus(size[tied]).astype(np.float64), minlength=n_genes)


def _condition_bits(n_batch: int) -> int:
    """Bits of a key that hold the index of a condition within its batch."""
    return int(max(n_batch - 1, 0)).bit_length()


def _run_starts(keys: np.ndarray) -> np.ndarray:
    """Positions where a run of equal sorted keys starts."""
    if not len(keys):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))


def _cube_minus(a: np.ndarray) -> np.ndarray:
    """``a³ − a`` (a tie group's term), in the dtype of ``a``."""
    return a * a * a - a


def _batch_statistics(
    keys: np.ndarray, ctrl: _Control, n_cells: np.ndarray, pvalue: np.ndarray, statistic: np.ndarray
) -> None:
    """p-values and statistics of a batch's conditions from their nonzero keys (sorted here, in place).

    The sorted keys are taken in blocks of whole genes; per (gene, condition) of a block, :func:`np.bincount`
    sums over the nonzeros ``#control keys below + #control keys at or below`` (counting every control key of
    lower genes too; corrected with ``ctrl.start`` in :func:`_finish`), the number of nonzeros, and the change
    of the control's tie term, ``((c_t + c_ctrl)³ − (c_t + c_ctrl)) − (c_ctrl³ − c_ctrl)`` over the distinct
    nonzero values of the condition (its count ``c_t`` and the control's ``c_ctrl``). Genes without a nonzero
    in the batch are finished from the zeros alone.
    """
    n_batch, n_genes = pvalue.shape
    t_bits = _condition_bits(n_batch)
    shift, t_mask = np.uint64(t_bits), np.uint64((1 << t_bits) - 1)
    gene_shift = np.uint64(_VALUE_BITS + t_bits)
    genes_per_block = max(1, _PAIRS // max(n_batch, 1))
    keys.sort()
    done, a, n_keys = 0, 0, len(keys)
    while a < n_keys:
        g0 = int(keys[a] >> gene_shift)
        _finish_empty(ctrl, done, g0, genes_per_block, n_cells, pvalue, statistic)
        b = min(a + _BLOCK, n_keys)
        last = int(keys[b - 1] >> gene_shift)  # may continue beyond b: left to the next block unless it is g0
        g1 = min(last + 1 if b == n_keys or last == g0 else last, g0 + genes_per_block)
        b = int(np.searchsorted(keys, np.uint64(g1) << gene_shift, side="left"))
        block = keys[a:b]
        less, less_equal = _control_counts(block, ctrl.keys, shift, t_mask)
        cell = ((block >> gene_shift).astype(np.int64) - g0) * n_batch + (block & t_mask).astype(np.int64)
        span = (g1 - g0) * n_batch
        rank = np.bincount(cell, weights=less + less_equal, minlength=span)
        nnz = np.bincount(cell, minlength=span)
        tie = np.zeros(span)
        runs = _run_starts(block)
        c_t = np.diff(np.append(runs, len(block)))
        c_ctrl = less_equal[runs] - less[runs]
        hit = (c_t > 1) | (c_ctrl > 0)
        if hit.any():
            c_t, c_ctrl = c_t[hit], c_ctrl[hit]
            change = (_cube_minus(c_t + c_ctrl) - _cube_minus(c_ctrl)).astype(np.float64)
            tie += np.bincount(cell[runs[hit]], weights=change, minlength=span)
        shape = (g1 - g0, n_batch)
        _finish(rank.reshape(shape).T, nnz.reshape(shape).T, tie.reshape(shape).T, ctrl, g0, n_cells,
                pvalue[:, g0:g1], statistic[:, g0:g1])
        done, a = g1, b
    _finish_empty(ctrl, done, n_genes, genes_per_block, n_cells, pvalue, statistic)


def _finish_empty(
    ctrl: _Control, g0: int, g1: int, step: int, n_cells: np.ndarray, pvalue: np.ndarray, statistic: np.ndarray
) -> None:
    """:func:`_finish` for genes ``g0 … g1 − 1``, zero in every cell of the batch, ``step`` genes at a time."""
    for g in range(g0, g1, step):
        h = min(g + step, g1)
        zeros = np.zeros((len(n_cells), h - g))
        _finish(zeros, zeros, zeros, ctrl, g, n_cells, pvalue[:, g:h], statistic[:, g:h])


def _control_counts(
    block: np.ndarray, ctrl_keys: np.ndarray, shift: np.uint64, t_mask: np.uint64
) -> tuple[np.ndarray, np.ndarray]:
    """For each of the sorted perturbed keys ``block``: the number of control keys below its (gene, value) and at
    or below it, counting every control key of lower genes too.

    Only the control keys within the block's range are located, in the block (a small array): a control key
    lies below the perturbed keys from the position of the first one of a higher value on.
    """
    lo = int(np.searchsorted(ctrl_keys, block[0] >> shift, side="left"))  # below every key of the block
    hi = int(np.searchsorted(ctrl_keys, block[-1] >> shift, side="right"))
    inside = ctrl_keys[lo:hi] << shift
    less_equal = lo + _passed(np.searchsorted(block, inside, side="left"), len(block))
    inside |= t_mask
    less = lo + _passed(np.searchsorted(block, inside, side="right"), len(block))
    return less, less_equal


def _passed(positions: np.ndarray, size: int) -> np.ndarray:
    """``#{j : positions[j] ≤ i}`` for ``i`` in ``0 … size − 1``."""
    return np.cumsum(np.bincount(positions, minlength=size + 1)[:size])


def _finish(
    rank: np.ndarray,
    nnz: np.ndarray,
    tie_change: np.ndarray,
    ctrl: _Control,
    g0: int,
    n_cells: np.ndarray,
    pvalue: np.ndarray,
    statistic: np.ndarray,
) -> None:
    """p-values and statistics of the batch's conditions (rows) for the genes ``g0 …`` (columns of ``pvalue`` and
    ``statistic``, filled in place) from the sums of :func:`_batch_statistics` (conditions × genes).

    The operations and their order are those of ``scipy.stats.mannwhitneyu``'s asymptotic method (and of
    pdex's kernel); every count is an exact integer in float64.
    """
    genes = slice(g0, g0 + pvalue.shape[1])
    n2 = ctrl.n_cells
    zeros_ctrl = (n2 - ctrl.nnz[genes]).astype(np.float64)
    offset = 2.0 * zeros_ctrl - 2.0 * ctrl.start[genes]  # per nonzero: 2·(control zeros − control keys of lower genes)
    n1 = n_cells[:, None].astype(np.int64)
    zeros_t = n1 - nnz
    u1 = 0.5 * (zeros_t * zeros_ctrl + nnz * offset + rank)
    zeros = zeros_t + zeros_ctrl
    tie = (zeros * zeros * zeros - zeros) + ctrl.tie[genes] + tie_change
    n = n1 + n2
    mu = n1 * n2 / 2.0
    s_sq = n1 * n2 / 12.0 * ((n + 1.0) - tie / (n * (n - 1.0)))
    n_f = n.astype(np.float64)
    tied = (s_sq <= 0) | (tie >= n_f * n_f * n_f - n_f)  # one tie group: no evidence of a difference
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.sqrt(s_sq)
        z = (np.maximum(u1, n1 * n2 - u1) - mu - 0.5) / s
        p = 2.0 * ndtr(-z)
        signed = (u1 - mu) / s
    np.clip(p, 0.0, 1.0, out=p)
    p[tied] = 1.0
    signed[tied] = 0.0
    pvalue[:] = p
    statistic[:] = signed
