"""Streaming pseudobulk (SPEC section 3).

``x̄_c`` is the mean of ``X`` over the cells of condition ``c``. The matrix is read in row chunks
straight from the HDF5 file (CSR ``data``/``indices``/``indptr`` or dense rows), so peak memory
depends on the chunk size and the number of conditions × genes, never on the number of cells.
Values are validated chunk by chunk (:func:`lsftbench.data.h5ad.check_values`).

Speed: the next chunk is read in a background thread while the current one is accumulated, the
read buffers are allocated once and reused, and a chunk's nonzeros are added to the
conditions × genes sums by one scatter-add pass (no per-chunk dense conditions × genes product).
"""

from __future__ import annotations

import logging
import os

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .chunks import row_chunks
from .conditions import CTRL, canonical_spellings, single_gene
from .h5ad import (
    IMPLAUSIBLE_MAX,
    InputDataError,
    ValueScan,
    cell_conditions,
    check_matrix_layout,
    check_values,
    gene_symbols,
    open_perturb_data,
)

try:  # C++ loop ``B[row[n], col[n]] += data[n]`` (what coo.toarray() runs); np.add.at if absent
    from scipy.sparse._sparsetools import coo_todense as _coo_todense
except ImportError:  # pragma: no cover - depends on the SciPy build
    _coo_todense = None

__all__ = ["pseudobulk", "delta", "ctrl_mean"]

log = logging.getLogger(__name__)

#: Nonzeros per scatter-add pass: keeps the per-pass temporaries (~12 bytes per nonzero) in cache.
_SUBBLOCK_NNZ = 1 << 18


def pseudobulk(
    path: str | os.PathLike[str], chunk_size: int = 20_000, *, allow_raw_counts: bool = False, variance: bool = True
) -> ad.AnnData:
    """Mean expression per condition, streamed over row chunks of ``X``.

    Parameters
    ----------
    path
        A GEARS ``perturb_processed.h5ad``; its metadata, the structure of ``X`` and every value are
        validated on the way (:mod:`lsftbench.data.h5ad`).
    chunk_size
        Cells per chunk (memory only; the result does not depend on it).
    allow_raw_counts
        Average values that look like raw counts (whole numbers only, or above
        :data:`lsftbench.data.h5ad.LOG_MAX`) with a warning instead of stopping with an error.
    variance
        Also gather the sums of squares in the same pass (a second scatter-add of the squared values
        of each chunk) and return the cells' sample variance per condition and
        gene in ``layers["variance"]`` (ddof 1; NaN for a condition with one cell): what the
        differential-expression test (SPEC 7.2, :mod:`lsftbench.evaluation.de`) needs, without a
        second pass over the cells.

    Returns
    -------
    AnnData
        conditions × genes; ``X`` the mean log-normalised expression (float64), ``obs["n_cells"]``,
        ``obs["gene"]`` (target gene of singles, empty otherwise), ``var["ctrl_mean"]``, and with
        ``variance`` ``layers["variance"]``. Conditions are ordered ``ctrl`` first, then by first
        appearance in ``obs``.

    Raises
    ------
    InputDataError
        Any problem of the file: bad metadata or condition names, inconsistent or unreadable ``X``,
        damaged, NaN/inf or negative values, raw counts (unless allowed), an all-zero ``X``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    codes, order, genes, n_obs, n_genes = cell_index(path)
    n_cond = len(order)
    sums = np.zeros((n_cond, n_genes))
    squares = np.zeros((n_cond, n_genes)) if variance else None
    counts = np.bincount(codes, minlength=n_cond)
    scan = ValueScan(path, allow_raw_counts=allow_raw_counts)
    try:
        for start, block in row_chunks(path, n_obs, n_genes, chunk_size):
            _check_chunk(block, path, start, scan)
            _accumulate(sums, codes[start : start + block.shape[0]], block, squares)
    except (OSError, RuntimeError) as err:  # h5py read failures of a damaged file
        raise InputDataError(path, f"X cannot be read ({type(err).__name__}: {err}); the file is damaged or truncated") from err
    scan.finish(n_obs, n_genes)
    sums /= counts[:, None]  # in place: the means
    layers = {} if squares is None else {"variance": _sample_variance(squares, sums, counts)}
    obs = pd.DataFrame(
        {"n_cells": counts, "gene": [single_gene(c) or "" for c in order]},
        index=pd.Index(order, name="condition"),
    )
    var = pd.DataFrame({"ctrl_mean": sums[0].copy()}, index=genes)
    log.info("pseudobulk of %s: %d cells, %d conditions, %d genes", path, n_obs, n_cond, n_genes)
    return ad.AnnData(X=sums, obs=obs, var=var, layers=layers)


def _sample_variance(squares: np.ndarray, means: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``(Σx² − n·x̄²) / (n − 1)`` per condition and gene, in place of the sums of squares (ddof 1).

    Rounding can leave a tiny negative or positive value where every cell holds the same number; a
    variance below ``(1e-7·|x̄|)²`` (far below what float32 data can vary by) is taken as exactly 0.
    NaN where a condition has a single cell.
    """
    n = counts[:, None].astype(np.float64)
    for row in range(0, len(squares), 256):  # in blocks: no conditions × genes temporaries
        s, m, k = squares[row : row + 256], means[row : row + 256], n[row : row + 256]
        s -= k * m * m
        with np.errstate(invalid="ignore", divide="ignore"):
            s /= k - 1
        s[s <= (1e-7 * m) ** 2] = 0.0
        s[np.broadcast_to(k <= 1, s.shape)] = np.nan
    return squares


def cell_index(path: str | os.PathLike[str]) -> tuple[np.ndarray, list[str], pd.Index, int, int]:
    """What streaming over ``X`` needs first: ``(codes, order, genes, n_obs, n_genes)``, the per-cell condition
    codes and their order (:func:`condition_codes`), the gene symbols and the cells × genes shape, with the
    metadata (:func:`open_perturb_data`, targets not checked) and the layout of ``X`` (:func:`check_matrix_layout`)
    validated."""
    adata = open_perturb_data(path, backed=True, check_targets=False)
    try:
        codes, order = condition_codes(adata)
        genes = gene_symbols(adata, path)
        n_obs, n_genes = adata.n_obs, adata.n_vars
    finally:
        if adata.isbacked:
            adata.file.close()
    check_matrix_layout(path, n_obs, n_genes)
    return codes, order, genes, n_obs, n_genes


def condition_codes(adata: ad.AnnData) -> tuple[np.ndarray, list[str]]:
    """Per-cell condition index into ``order`` (``ctrl`` first, then first appearance).

    A condition spelled two ways (``A+B`` and ``B+A``) is one entry of ``order``, named as its first cell
    names it, as :func:`lsftbench.data.h5ad.cell_conditions` reads it (SPEC 10).
    """
    column = adata.obs["condition"]
    if isinstance(column.dtype, pd.CategoricalDtype):
        names = column.cat.categories.astype(str)
        if names.is_unique:  # work on the integer codes, not millions of strings
            cat_codes = column.cat.codes.to_numpy()
            first = pd.unique(cat_codes)
            spelled = [names[i] for i in first]
            renames = canonical_spellings(spelled)
            read = [renames.get(name, name) for name in spelled]
            ordered = list(dict.fromkeys([n for n in read if n == CTRL] + [n for n in read if n != CTRL]))
            position = np.full(len(names), -1, dtype=np.int32)
            position[first] = pd.Index(ordered).get_indexer(read)
            return position[cat_codes], ordered
    conditions = cell_conditions(adata).to_numpy()
    uniques = pd.unique(conditions)
    order = [CTRL] + [str(c) for c in uniques if c != CTRL]
    return pd.Index(order).get_indexer(conditions).astype(np.int32), order


def _check_chunk(
    block: np.ndarray | sp.csr_matrix, path: str | os.PathLike[str], start: int, scan: ValueScan | None = None
) -> None:
    """Validate one chunk before it is accumulated.

    Column indices must lie inside the matrix (a damaged file would otherwise make the scatter-add
    write out of bounds); values go through :func:`check_values`, screened by two reductions (NaN
    fails both comparisons) that need no temporaries; ``scan`` collects the whole-matrix checks.
    """
    if sp.issparse(block) and block.indices.size:
        unsigned = block.indices.view(np.dtype(f"u{block.indices.dtype.itemsize}"))
        if int(unsigned.max()) >= block.shape[1]:  # negative indices wrap to huge unsigned ones
            bad = int(np.flatnonzero(unsigned >= block.shape[1])[0])
            cell = start + int(np.searchsorted(block.indptr, bad, side="right") - 1)
            raise InputDataError(
                path,
                f"X is inconsistent: cell {cell} stores a value in gene column {int(block.indices[bad])} of "
                f"{block.shape[1]}; the file is corrupted (damaged bytes) or was written inconsistently",
            )
    values = block.data if sp.issparse(block) else block
    if not values.size:
        return
    high = values.max()
    if not (values.min() >= 0 and high <= IMPLAUSIBLE_MAX):
        check_values(block, path, start)
    if scan is not None:
        scan.update(block, float(high), start)


def _accumulate(
    sums: np.ndarray, codes: np.ndarray, block: np.ndarray | sp.csr_matrix, squares: np.ndarray | None = None
) -> None:
    """``sums[codes[i]] += block[i]`` (and ``squares[codes[i]] += block[i]²``) for every row ``i`` of the chunk."""
    if sp.issparse(block):
        indptr, indices, data = block.indptr, block.indices, block.data
        row_nnz = np.diff(indptr)
        flat = sums.reshape(-1)
        flat_sq = None if squares is None else squares.reshape(-1)
        a = 0
        while a < block.shape[0]:  # sub-blocks of ~_SUBBLOCK_NNZ nonzeros
            b = int(np.searchsorted(indptr, indptr[a] + _SUBBLOCK_NNZ, side="right")) - 1
            b = min(max(b, a + 1), block.shape[0])
            lo, hi = int(indptr[a]), int(indptr[b])
            if hi > lo:
                rows = np.repeat(codes[a:b].astype(indices.dtype, copy=False), row_nnz[a:b])
                vals = data[lo:hi].astype(np.float64)
                cols = indices[lo:hi]
                _scatter_add(sums, flat, rows, cols, vals)
                if squares is not None:
                    np.multiply(vals, vals, out=vals)
                    _scatter_add(squares, flat_sq, rows, cols, vals)
            a = b
        return
    rows_per_pass = max(1, _SUBBLOCK_NNZ // max(1, block.shape[1]))
    for a in range(0, block.shape[0], rows_per_pass):
        part_codes = codes[a : a + rows_per_pass]
        perm = np.argsort(part_codes, kind="stable")
        sorted_codes = part_codes[perm]
        starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        values = np.asarray(block[a : a + rows_per_pass], dtype=np.float64)[perm]
        sums[sorted_codes[starts]] += np.add.reduceat(values, starts, axis=0)
        if squares is not None:
            np.multiply(values, values, out=values)
            squares[sorted_codes[starts]] += np.add.reduceat(values, starts, axis=0)


def _scatter_add(target: np.ndarray, flat: np.ndarray, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> None:
    """``target[rows[k], cols[k]] += vals[k]`` for every k, in order (``flat``: ``target`` raveled)."""
    if _coo_todense is not None:
        _coo_todense(target.shape[0], target.shape[1], len(vals), rows, cols, vals, flat, 0)
    else:  # pragma: no cover
        np.add.at(target, (rows, cols), vals)


def ctrl_mean(pb: ad.AnnData) -> np.ndarray:
    """Baseline expression ``b = x̄_ctrl`` (genes)."""
    return np.asarray(pb[CTRL].X).ravel()


def delta(pb: ad.AnnData) -> pd.DataFrame:
    """Expression changes ``Δ_c = x̄_c − b`` as a genes × conditions frame."""
    x = np.asarray(pb.X)
    return pd.DataFrame((x - ctrl_mean(pb)[None, :]).T, index=pb.var_names, columns=pb.obs_names)

