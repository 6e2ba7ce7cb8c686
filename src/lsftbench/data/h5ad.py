"""Reading and validating GEARS ``perturb_processed.h5ad`` files (SPEC section 1).

Metadata are checked when a file is opened (:func:`open_perturb_data`): the ``condition`` column, its
names (``ctrl``, ``G+ctrl``, ``ctrl+G``, ``A+B``), control cells, gene symbols and whether they match
the perturbation targets. The on-disk layout of ``X`` is checked before streaming
(:func:`check_matrix_layout`), and its values chunk by chunk while the pseudobulk streams over the
matrix (:func:`check_values`, :class:`ValueScan`), so validation never costs an extra pass over the
cells. Damaged files are told apart from wrong-but-intact data where the bytes allow it: values no
expression matrix holds (magnitudes beyond 1e10, or subnormal-tiny nonzeros) and inconsistent sparse
structure are reported as a corrupted or inconsistent file, not as "negative values".
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..formats import LOG_MAX
from ..io import InputDataError
from .conditions import CTRL, canonical_spellings, invalid_conditions, perturbation_targets

if TYPE_CHECKING:
    import anndata as ad

__all__ = [
    "InputDataError",
    "LOG_MAX",
    "IMPLAUSIBLE_MAX",
    "open_perturb_data",
    "gene_symbols",
    "cell_conditions",
    "first_seen_names",
    "check_condition_names",
    "check_targets_measured",
    "check_matrix_layout",
    "check_values",
    "ValueScan",
]

log = logging.getLogger(__name__)

#: No expression value, not even a raw count, is this large: such values are damaged bytes.
IMPLAUSIBLE_MAX = 1e10
#: Nonzero magnitudes this small (float32 subnormals start at 1.2e-38) only come from damaged bytes.
IMPLAUSIBLE_TINY = 1e-30
_DAMAGED = "the file is corrupted (damaged bytes) or was written inconsistently; re-create or re-download it"
_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$")


def open_perturb_data(path: str | os.PathLike[str], backed: bool = True, *, check_targets: bool = True) -> ad.AnnData:
    """Open a GEARS-format h5ad (backed read-only by default) and validate its metadata.

    Parameters
    ----------
    path
        The ``perturb_processed.h5ad``.
    backed
        Open backed read-only (``X`` stays on disk).
    check_targets
        Also require that the perturbation targets are found among the gene symbols
        (:func:`check_targets_measured`). Off for callers that only average cells per condition.

    Raises
    ------
    InputDataError
        If the file is missing, unreadable or truncated, lacks ``obs["condition"]``, has condition
        names other than ``ctrl``/``G+ctrl``/``ctrl+G``/``A+B``, has no ``ctrl`` cells, lacks gene
        symbols or has duplicated ones, is empty, or (``check_targets``) none of its perturbation
        targets is among its gene symbols.
    """
    import anndata as ad  # here, not at module level: InputDataError users need not pay its import

    path = Path(path)
    if not path.exists():
        raise InputDataError(path, "file does not exist")
    try:
        adata = ad.read_h5ad(path, backed="r" if backed else None)
    except Exception as err:  # noqa: BLE001 - any reader failure is an input problem
        raise InputDataError(path, _unreadable(err)) from err
    if "condition" not in adata.obs.columns:
        raise InputDataError(path, "obs has no 'condition' column")
    conditions = cell_conditions(adata)
    if conditions.isna().any():
        raise InputDataError(path, f"obs['condition'] has {int(conditions.isna().sum())} missing values")
    check_condition_names(adata.obs["condition"], path)
    if not (conditions == CTRL).any():
        raise InputDataError(path, "no control cells: no obs['condition'] equals 'ctrl'")
    symbols = gene_symbols(adata, path)
    dup = symbols[symbols.duplicated()].unique()
    if len(dup):
        shown = ", ".join(map(str, dup[:5]))
        raise InputDataError(path, f"{len(dup)} duplicated gene names in var['gene_name'] (e.g. {shown})")
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputDataError(path, f"empty matrix ({adata.n_obs} cells x {adata.n_vars} genes)")
    if check_targets:
        check_targets_measured(pd.unique(conditions), symbols, path, has_gene_name="gene_name" in adata.var.columns)
    return adata


def _unreadable(err: Exception) -> str:
    """Problem text for a file the h5ad reader rejects; truncation is named as such."""
    text = str(err)
    if "truncated file" in text:
        return f"the file is truncated (an interrupted download or copy?): {text}"
    return f"not a readable h5ad file ({type(err).__name__}: {text})"


def gene_symbols(adata: ad.AnnData, path: str | os.PathLike[str] = "<AnnData>") -> pd.Index:
    """Gene symbols: ``var["gene_name"]`` (GEARS), else the var names."""
    if "gene_name" in adata.var.columns:
        symbols = adata.var["gene_name"]
        if symbols.isna().any():
            raise InputDataError(path, "var['gene_name'] has missing values")
        return pd.Index(symbols.astype(str).to_numpy(), name="gene")
    return pd.Index(adata.var_names.astype(str), name="gene")


def cell_conditions(adata: ad.AnnData) -> pd.Series:
    """``obs["condition"]`` as plain strings, one spelling per condition (SPEC 10).

    A condition spelled two ways (``A+B`` and ``B+A``, or ``G+ctrl`` and ``ctrl+G``) is read as the spelling
    of its first cell (:func:`~lsftbench.data.conditions.canonical_spellings`), so the split, the pseudobulk
    (:func:`lsftbench.data.pseudobulk.condition_codes`) and the noise ceiling see one condition. A column
    without such duplicates is returned as written.
    """
    conditions = adata.obs["condition"].astype("object").astype("string").astype(object)
    renames = canonical_spellings(first_seen_names(adata.obs["condition"]))
    return conditions.replace(renames) if renames else conditions


def first_seen_names(column: pd.Series) -> list[str]:
    """The distinct names of a per-cell condition column (categorical or not) in the order of their first
    cell; missing values are left out."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        names = column.cat.categories
        return [str(names[code]) for code in pd.unique(column.cat.codes.to_numpy()) if code >= 0]
    return [str(name) for name in pd.unique(column.to_numpy()) if not pd.isna(name)]


def check_condition_names(column: pd.Series, path: str | os.PathLike[str], limit: int = 10) -> None:
    """Reject condition names that are not ``ctrl``, ``G+ctrl``, ``ctrl+G`` or ``A+B``.

    Such names (``Ctrl``, ``""``, a bare ``G``, ``A+B+C``, ``ctrl+ctrl``) would otherwise become test
    perturbations of their own and reshuffle the split.

    Parameters
    ----------
    column
        The per-cell ``obs["condition"]`` (categorical or strings).
    path
        Named in the error.
    limit
        How many offending names the message lists (each with its cell count and the reason).
    """
    counts = column.value_counts(sort=False, dropna=True)
    counts = counts[counts > 0]
    problems = invalid_conditions(counts.index)
    if not problems:
        return
    names = sorted(problems, key=lambda name: (-int(counts[name]), str(name)))
    listed = "; ".join(f"{name!r} ({int(counts[name])} cells): {problems[name]}" for name in names[:limit])
    more = f"; ... ({len(names)} names in all)" if len(names) > limit else ""
    raise InputDataError(
        path,
        f"{len(names)} condition name(s) in obs['condition'] are not '{CTRL}', 'G+{CTRL}', '{CTRL}+G' or 'A+B': "
        f"{listed}{more}",
    )


def check_targets_measured(
    conditions: pd.Index | np.ndarray | list[str], symbols: pd.Index, path: str | os.PathLike[str], *, has_gene_name: bool
) -> int:
    """Require that the perturbation targets are found among the gene symbols.

    A file whose genes are named by Ensembl IDs (no ``var["gene_name"]``), or whose symbols are
    spelled differently from the condition names, would otherwise fail much later with "LSFT needs
    at least one training perturbation".

    A target that matches a gene symbol only when case is ignored (``g00000+ctrl`` where the gene is
    ``G00000``) is an error too: read as written it is "not measured", and its cells would silently leave
    training.

    Returns
    -------
    int
        The number of targets that are measured genes (a warning is logged when fewer than half are).

    Raises
    ------
    InputDataError
        When none is, or when some match only case-insensitively; the message gives examples.
    """
    targets = perturbation_targets(str(c) for c in conditions)
    if not targets:
        return 0
    known = set(symbols)
    matched = sum(t in known for t in targets)
    where = "var['gene_name']" if has_gene_name else "var_names (the file has no var['gene_name'] column)"
    by_case: dict[str, list[str]] = {}
    for s in known:
        by_case.setdefault(str(s).upper(), []).append(str(s))
    cased = {t: by_case[t.upper()] for t in targets if t not in known and t.upper() in by_case}
    if matched and cased:
        pairs = ", ".join(f"{t!r} (gene {' / '.join(map(repr, genes))})" for t, genes in sorted(cased.items())[:5])
        raise InputDataError(
            path,
            f"{len(cased)} perturbation target(s) match a gene symbol in {where} only when upper/lower case is "
            f"ignored: {pairs}{' ...' if len(cased) > 5 else ''}; as written they are not measured genes and their "
            "cells would be left out of training. Spell the conditions in obs['condition'] like the gene symbols",
        )
    if matched:
        if matched < len(targets) / 2:
            log.warning("%s: only %d of %d perturbation targets are among the gene symbols in %s", path, matched, len(targets), where)
        return matched
    hints = []
    if sum(bool(_ENSEMBL.match(str(s))) for s in symbols[:1000]) > min(len(symbols), 1000) / 2:
        hints.append("the gene names look like Ensembl IDs; GEARS files carry the symbols in var['gene_name']")
    upper = {str(s).upper() for s in symbols}
    n_case = sum(t.upper() in upper for t in targets)
    if n_case:
        hints.append(f"{n_case} targets match when upper/lower case is ignored")
    raise InputDataError(
        path,
        f"the gene symbols do not match the perturbation targets: none of the {len(targets)} target genes "
        f"(e.g. {_examples(targets)}) is among the {len(symbols)} gene names in {where} (e.g. {_examples(symbols)})"
        + "".join(f"; {h}" for h in hints),
    )


def _examples(names: pd.Index | list[str], k: int = 3) -> str:
    return ", ".join(repr(str(n)) for n in list(names[:k]))


def check_matrix_layout(path: str | os.PathLike[str], n_obs: int, n_vars: int) -> None:
    """Check the on-disk structure of ``X`` against the cells × genes shape before streaming it.

    For a sparse ``X``: the three arrays exist, the index pointer has one entry per row (CSR) or
    column (CSC) plus one, starts at 0, never decreases and ends at the number of stored values. For
    a dense ``X``: its shape. Column indices are checked per chunk while streaming.

    Raises
    ------
    InputDataError
        The file is inconsistent (damaged, or written by a faulty tool) or unreadable.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "X" not in f:
                layers = sorted(f["layers"]) if isinstance(f.get("layers"), h5py.Group) else []
                where = (f"its data are in layers {', '.join(map(repr, layers))}; copy the one of log-normalised "
                         "expression to X (adata.X = adata.layers[name]) and write the file again") if layers else \
                    "it has no layers either"
                raise InputDataError(path, f"X is empty (the AnnData has no X matrix): {where}")
            x = f["X"]
            if isinstance(x, h5py.Dataset):
                if tuple(x.shape) != (n_obs, n_vars):
                    raise InputDataError(path, f"X has shape {tuple(x.shape)} but obs/var describe {(n_obs, n_vars)}; {_DAMAGED}")
                return
            encoding = x.attrs.get("encoding-type", "")
            encoding = encoding.decode() if isinstance(encoding, bytes) else str(encoding)
            if encoding in ("csr_matrix", "csc_matrix"):
                _check_compressed(path, x, encoding, n_obs, n_vars)
    except InputDataError:
        raise
    except (OSError, KeyError, RuntimeError, ValueError) as err:
        raise InputDataError(path, f"X cannot be read ({type(err).__name__}: {err}); {_DAMAGED}") from err


def _check_compressed(path: str | os.PathLike[str], x: object, encoding: str, n_obs: int, n_vars: int) -> None:
    """The CSR/CSC consistency checks of :func:`check_matrix_layout`."""
    missing = [name for name in ("data", "indices", "indptr") if name not in x]  # type: ignore[operator]
    if missing:
        raise InputDataError(path, f"sparse X lacks {', '.join(missing)}; {_DAMAGED}")
    shape = tuple(int(s) for s in x.attrs.get("shape", (n_obs, n_vars)))  # type: ignore[attr-defined]
    if shape != (n_obs, n_vars):
        raise InputDataError(path, f"X has shape {shape} but obs/var describe {(n_obs, n_vars)}; {_DAMAGED}")
    major, unit = (n_obs, "row") if encoding == "csr_matrix" else (n_vars, "column")
    data, indices = x["data"], x["indices"]  # type: ignore[index]
    indptr = np.asarray(x["indptr"][...])  # type: ignore[index]
    problem = None
    if indptr.shape != (major + 1,):
        problem = f"its index pointer has {indptr.size} entries for {major} {unit}s (expected {major + 1})"
    elif indptr[0] != 0:
        problem = f"its index pointer starts at {indptr[0]}, not 0"
    elif (drop := np.flatnonzero(np.diff(indptr) < 0)).size:
        problem = f"its index pointer decreases at {unit} {int(drop[0])}"
    elif not (indptr[-1] == data.shape[0] == indices.shape[0]):
        problem = (
            f"its index pointer ends at {int(indptr[-1])} but it stores {data.shape[0]} values and "
            f"{indices.shape[0]} indices"
        )
    if problem:
        raise InputDataError(path, f"X ({encoding}) is inconsistent: {problem}; {_DAMAGED}")


def check_values(block: np.ndarray | sp.spmatrix, path: str | os.PathLike[str], first_row: int) -> None:
    """Reject damaged, NaN/inf and negative values in a row chunk of log-normalised expression.

    ``block`` is a dense array or a CSR matrix holding cells ``first_row …`` of the file. Values no
    expression matrix holds (finite magnitudes above :data:`IMPLAUSIBLE_MAX`, nonzero ones below
    1e-30) are reported first, as a damaged file: that is what corrupted bytes look like once read
    as floats, and they come with negative and NaN values that would otherwise be blamed instead.
    """
    if sp.issparse(block):
        block = sp.csr_matrix(block)
        values, row_of = block.data, lambda k: int(np.searchsorted(block.indptr, k, side="right") - 1)
    else:
        values = np.asarray(block)
        row_of = lambda k: int(k // values.shape[1]) if values.ndim == 2 else 0  # noqa: E731
        values = values.ravel()
    finite = np.isfinite(values)
    magnitude = np.abs(np.where(finite, values, 0))
    bad = np.flatnonzero(finite & ((magnitude > IMPLAUSIBLE_MAX) | ((magnitude < IMPLAUSIBLE_TINY) & (magnitude > 0))))
    if bad.size:
        shown = ", ".join(f"{values[k]:.3g} (cell {first_row + row_of(k)})" for k in bad[:3])
        raise InputDataError(path, f"X holds {bad.size} values no expression matrix has, e.g. {shown}; {_DAMAGED}")
    bad = np.flatnonzero(~finite)
    if bad.size:
        raise InputDataError(path, f"X has NaN or infinite values (first in cell {first_row + row_of(bad[0])})")
    bad = np.flatnonzero(values < 0)
    if bad.size:
        raise InputDataError(
            path, f"X has negative values, so it is not log-normalised data (first in cell {first_row + row_of(bad[0])})"
        )


@dataclass
class ValueScan:
    """Whole-matrix checks of ``X`` accumulated over the streamed chunks (no extra pass).

    Raw counts (every stored value an integer, or values above :data:`LOG_MAX`) are an error unless
    ``allow_raw_counts``, then a loud warning; an all-zero ``X`` is always an error.

    Parameters
    ----------
    path
        Named in errors and warnings.
    allow_raw_counts
        The user's switch for data they know are not log-normalised.
    """

    path: str | os.PathLike[str]
    allow_raw_counts: bool = False
    max_value: float = 0.0
    max_cell: int = -1
    fractional: bool = False

    def update(self, block: np.ndarray | sp.spmatrix, block_max: float, first_row: int) -> None:
        """Add one chunk (finite, non-negative values; cells ``first_row …``) whose largest value is ``block_max``."""
        if block_max > self.max_value:
            self.max_value = float(block_max)
            if block_max > LOG_MAX:
                self.max_cell = first_row + _row_of_max(block)
        if not self.fractional:
            self.fractional = _has_fraction(block.data if sp.issparse(block) else np.asarray(block))
        if block_max > LOG_MAX and not self.allow_raw_counts:
            raise InputDataError(self.path, self._raw_message(f"values up to {self.max_value:.6g} (cell {self.max_cell})"))

    def finish(self, n_obs: int, n_vars: int) -> None:
        """Checks that need every chunk: all-zero ``X``, integer-only values."""
        if self.max_value == 0:
            raise InputDataError(
                self.path, f"X is all zeros ({n_obs} cells x {n_vars} genes): there is no expression to average"
            )
        reasons = []
        if not self.fractional:
            reasons.append("every stored value is a whole number")
        if self.max_value > LOG_MAX:
            reasons.append(f"values up to {self.max_value:.6g} (cell {self.max_cell})")
        if not reasons:
            return
        message = self._raw_message(" and ".join(reasons))
        if not self.allow_raw_counts:
            raise InputDataError(self.path, message)
        log.warning("%s: %s. allow_raw_counts is set, so these values are averaged AS THEY ARE.", self.path, message)

    def _raw_message(self, evidence: str) -> str:
        return (
            f"X looks like raw counts, not log-normalised expression ({evidence}; log-normalised data have "
            f"fractional values below ~{LOG_MAX:g}). Normalise and log1p the data (e.g. scanpy "
            "normalize_total + log1p), or set allow_raw_counts: true for this dataset if the values are meant "
            "to be used as they are"
        )


def _row_of_max(block: np.ndarray | sp.spmatrix) -> int:
    """Row (within the chunk) of the chunk's largest value."""
    if sp.issparse(block):
        block = sp.csr_matrix(block)
        return int(np.searchsorted(block.indptr, int(np.argmax(block.data)), side="right") - 1)
    block = np.asarray(block)
    return int(np.argmax(block) // max(1, block.shape[1])) if block.ndim == 2 else 0


def _has_fraction(values: np.ndarray, step: int = 1 << 16) -> bool:
    """Whether any value has a fractional part; stops at the first sub-block that has one."""
    flat = values.reshape(-1)
    for a in range(0, flat.size, step):
        part = flat[a : a + step]
        if np.any(part != np.floor(part)):
            return True
    return False
