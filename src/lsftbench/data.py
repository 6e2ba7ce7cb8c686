"""Reading and validating GEARS ``perturb_processed.h5ad`` files (SPEC section 1).

Metadata are checked when a file is opened (:func:`open_perturb_data`); the values of ``X`` (NaN,
inf, negative entries) are checked chunk by chunk while the pseudobulk streams over the matrix, so
validation never costs an extra pass over the cells.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .conditions import CTRL

if TYPE_CHECKING:
    import anndata as ad

__all__ = ["InputDataError", "open_perturb_data", "gene_symbols", "cell_conditions", "check_values"]


class InputDataError(ValueError):
    """An input file violates the expected format; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


def open_perturb_data(path: str | os.PathLike[str], backed: bool = True) -> ad.AnnData:
    """Open a GEARS-format h5ad (backed read-only by default) and validate its metadata.

    Raises
    ------
    InputDataError
        If the file is missing or unreadable, lacks ``obs["condition"]``, has no ``ctrl`` cells,
        lacks gene symbols or has duplicated ones.
    """
    import anndata as ad  # here, not at module level: InputDataError users need not pay its import

    path = Path(path)
    if not path.exists():
        raise InputDataError(path, "file does not exist")
    try:
        adata = ad.read_h5ad(path, backed="r" if backed else None)
    except Exception as err:  # noqa: BLE001 - any reader failure is an input problem
        raise InputDataError(path, f"not a readable h5ad file ({type(err).__name__}: {err})") from err
    if "condition" not in adata.obs.columns:
        raise InputDataError(path, "obs has no 'condition' column")
    conditions = cell_conditions(adata)
    if conditions.isna().any():
        raise InputDataError(path, f"obs['condition'] has {int(conditions.isna().sum())} missing values")
    if not (conditions == CTRL).any():
        raise InputDataError(path, "no control cells: no obs['condition'] equals 'ctrl'")
    symbols = gene_symbols(adata, path)
    dup = symbols[symbols.duplicated()].unique()
    if len(dup):
        shown = ", ".join(map(str, dup[:5]))
        raise InputDataError(path, f"{len(dup)} duplicated gene names in var['gene_name'] (e.g. {shown})")
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputDataError(path, f"empty matrix ({adata.n_obs} cells x {adata.n_vars} genes)")
    return adata


def gene_symbols(adata: ad.AnnData, path: str | os.PathLike[str] = "<AnnData>") -> pd.Index:
    """Gene symbols: ``var["gene_name"]`` (GEARS), else the var names."""
    if "gene_name" in adata.var.columns:
        symbols = adata.var["gene_name"]
        if symbols.isna().any():
            raise InputDataError(path, "var['gene_name'] has missing values")
        return pd.Index(symbols.astype(str).to_numpy(), name="gene")
    return pd.Index(adata.var_names.astype(str), name="gene")


def cell_conditions(adata: ad.AnnData) -> pd.Series:
    """``obs["condition"]`` as plain strings."""
    return adata.obs["condition"].astype("object").astype("string").astype(object)


def check_values(block: np.ndarray | sp.spmatrix, path: str | os.PathLike[str], first_row: int) -> None:
    """Reject NaN/inf and negative values in a row chunk of log-normalised expression.

    ``block`` is a dense array or a CSR matrix holding cells ``first_row …`` of the file.
    """
    if sp.issparse(block):
        block = sp.csr_matrix(block)
        values, row_of = block.data, lambda k: int(np.searchsorted(block.indptr, k, side="right") - 1)
    else:
        values = np.asarray(block)
        row_of = lambda k: int(k // values.shape[1]) if values.ndim == 2 else 0  # noqa: E731
        values = values.ravel()
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InputDataError(path, f"X has NaN or infinite values (first in cell {first_row + row_of(bad[0])})")
    bad = np.flatnonzero(values < 0)
    if bad.size:
        raise InputDataError(
            path, f"X has negative values, so it is not log-normalised data (first in cell {first_row + row_of(bad[0])})"
        )
