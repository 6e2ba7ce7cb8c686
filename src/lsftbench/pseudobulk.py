"""Streaming pseudobulk (SPEC section 3).

``x̄_c`` is the mean of ``X`` over the cells of condition ``c``. The matrix is read in row chunks from
a backed h5ad, so peak memory depends on the chunk size and the number of conditions × genes, never
on the number of cells. Values are validated chunk by chunk (:func:`lsftbench.data.check_values`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .conditions import CTRL, single_gene
from .data import InputDataError, cell_conditions, check_values, gene_symbols, open_perturb_data

__all__ = ["pseudobulk", "delta", "ctrl_mean"]

log = logging.getLogger(__name__)


def pseudobulk(path: str | os.PathLike[str], chunk_size: int = 20_000) -> ad.AnnData:
    """Mean expression per condition, streamed over row chunks of ``X``.

    Returns
    -------
    AnnData
        conditions × genes; ``X`` the mean log-normalised expression (float64), ``obs["n_cells"]``,
        ``obs["gene"]`` (target gene of singles, empty otherwise), ``var["ctrl_mean"]``.
        Conditions are ordered ``ctrl`` first, then by first appearance in ``obs``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    adata = open_perturb_data(path, backed=True)
    try:
        conditions = cell_conditions(adata).to_numpy()
        uniques = pd.unique(conditions)
        order = [CTRL] + [c for c in uniques if c != CTRL]
        codes = pd.Index(order).get_indexer(conditions)
        n_cond, n_genes = len(order), adata.n_vars
        sums = np.zeros((n_cond, n_genes))
        counts = np.bincount(codes, minlength=n_cond)
        for start in range(0, adata.n_obs, chunk_size):
            stop = min(start + chunk_size, adata.n_obs)
            block = adata.X[start:stop]
            check_values(block, path, start)
            indicator = sp.csr_matrix(
                (np.ones(stop - start), (codes[start:stop], np.arange(stop - start))), shape=(n_cond, stop - start)
            )
            dense_or_csr = block.astype(np.float64) if sp.issparse(block) else np.asarray(block, dtype=np.float64)
            product = indicator @ dense_or_csr
            sums += product.toarray() if sp.issparse(product) else product
        genes = gene_symbols(adata, path)
    finally:
        if adata.isbacked:
            adata.file.close()
    means = sums / counts[:, None]
    obs = pd.DataFrame(
        {"n_cells": counts, "gene": [single_gene(c) or "" for c in order]},
        index=pd.Index(order, name="condition"),
    )
    var = pd.DataFrame({"ctrl_mean": means[0]}, index=genes)
    log.info("pseudobulk of %s: %d cells, %d conditions, %d genes", path, len(conditions), n_cond, n_genes)
    return ad.AnnData(X=means, obs=obs, var=var)


def ctrl_mean(pb: ad.AnnData) -> np.ndarray:
    """Baseline expression ``b = x̄_ctrl`` (genes)."""
    return np.asarray(pb[CTRL].X).ravel()


def delta(pb: ad.AnnData) -> pd.DataFrame:
    """Expression changes ``Δ_c = x̄_c − b`` as a genes × conditions frame."""
    x = np.asarray(pb.X)
    return pd.DataFrame((x - ctrl_mean(pb)[None, :]).T, index=pb.var_names, columns=pb.obs_names)


def require_conditions(pb: ad.AnnData, conditions: list[str], path: str | os.PathLike[str]) -> None:
    """Every condition of a split must have cells in the pseudobulk."""
    present = pd.Index(pb.obs_names)
    missing = [c for c in conditions if c not in present]
    if missing:
        raise InputDataError(
            path, f"{len(missing)} split conditions have zero cells in the data (e.g. {', '.join(missing[:5])})"
        )
