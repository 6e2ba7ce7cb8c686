"""Perturbation embedding from the GEARS GO graph: adjacency spectral embedding (SPEC section 4).

GO-graph semantics (:func:`go_graph_embedding`) follow the paper's R code
(``extract_pert_embedding_from_gears.R``, R igraph 2.0.3):

``Matrix::sparseMatrix(i = source, j = target, x = importance)``
    duplicated ``(source, target)`` rows are **summed**;
``graph_from_adjacency_matrix(mode = "undirected", weighted = TRUE)``
    the matrix must be symmetric and its lower triangle *including the diagonal* becomes the
    edges, so an edge listed in both directions (as in GEARS' file, where the Jaccard index is
    symmetric) keeps its weight (it is *not* doubled) and a self-loop ``g -> g`` becomes a loop of
    that weight. R stops on an asymmetric matrix; here the weight of ``{i, j}`` is then
    ``max(W_ij, W_ji)`` (igraph's ``"max"`` mode) and a warning is emitted;
``embed_adjacency_matrix(g, no = d, which = "lm", scaled = TRUE)``
    with its default ``cvec = strength(g) / (vcount(g) - 1)`` *added to the diagonal*: the
    decomposed matrix is ``M = A + diag(s / (n - 1))`` where ``A_ii`` is the loop weight (loops
    counted once in the product, igraph ``IGRAPH_LOOPS_ONCE``) and ``s_i = sum_{j != i} A_ij +
    2 A_ii`` (igraph's strength counts an undirected loop twice). The embedding is ``U |Λ|^½`` for
    the ``d`` eigenvalues of largest magnitude.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import ArpackNoConvergence, eigsh

from ..formats import GO_COLUMNS
from ..io import InputDataError
from .gene_tables import make_gene_table
from .pca import fix_signs

__all__ = [
    "go_graph_embedding",
    "read_go_edges",
    "go_adjacency",
    "adjacency_spectral_embedding",
    "igraph_augmented_adjacency",
]

_ARPACK_SEED = 20240917

# --------------------------------------------------------------------------------------------
# GEARS GO graph
# --------------------------------------------------------------------------------------------


def read_go_edges(
    csv_path: str | os.PathLike[str], chunksize: int = 2_000_000
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Stream GEARS' ``go_essential_all.csv`` (columns ``source``, ``target``, ``importance``).

    Parameters
    ----------
    csv_path
        Edge list; other columns are ignored, gene names are read verbatim (no NA parsing).
    chunksize
        Rows per chunk; only the integer-coded edges are kept in memory.

    Returns
    -------
    genes, sources, targets, weights
        Gene names in order of first appearance and, per row, the int32 ids of source and
        target and the float64 importance.
    """
    path = Path(csv_path)
    if not path.is_file():
        raise InputDataError(path, "file does not exist")
    index: dict[str, int] = {}
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    dtypes = {"source": "category", "target": "category", "importance": "float64"}
    try:
        reader = pd.read_csv(path, usecols=list(GO_COLUMNS), dtype=dtypes, na_filter=False, chunksize=chunksize)
        for chunk in reader:
            parts.append(_encode_chunk(chunk, index))
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        problem = f"not a readable GO edge list with columns {', '.join(GO_COLUMNS)} ({type(err).__name__}: {err})"
        raise InputDataError(path, problem) from err
    if not parts or sum(len(p[2]) for p in parts) == 0:
        raise InputDataError(path, "no edges")
    sources, targets, weights = (np.concatenate([p[k] for p in parts]) for k in range(3))
    bad = np.flatnonzero(~np.isfinite(weights))
    if bad.size:
        raise InputDataError(path, f"{bad.size} non-finite importance values (first in data row {bad[0] + 1})")
    return list(index), sources, targets, weights


def _encode_chunk(chunk: pd.DataFrame, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map one chunk's categorical source/target to global ids (``index`` grows in place)."""
    ids = []
    for name in ("source", "target"):
        cat = chunk[name].cat
        lookup = np.array([index.setdefault(str(g), len(index)) for g in cat.categories], dtype=np.int32)
        ids.append(lookup[cat.codes.to_numpy()] if len(lookup) else np.empty(0, dtype=np.int32))
    return ids[0], ids[1], chunk["importance"].to_numpy(dtype=np.float64)


def go_adjacency(
    n: int, sources: np.ndarray, targets: np.ndarray, weights: np.ndarray, path: str | os.PathLike[str] = "<edges>"
) -> sp.csr_matrix:
    """Symmetric weighted ``n × n`` adjacency in the paper's igraph semantics (module docstring).

    Duplicated ``(source, target)`` rows are summed; a symmetric matrix keeps its lower triangle
    (incl. diagonal = self-loop weights), an asymmetric one becomes ``max(W, W.T)`` with a warning.
    """
    w = sp.coo_matrix((weights, (sources, targets)), shape=(n, n)).tocsr()
    w.sum_duplicates()
    difference = abs(w - w.T)
    scale = max(abs(w).max(), 1.0) if w.nnz else 1.0
    if difference.nnz == 0 or difference.max() <= 1e-12 * scale:
        return (sp.tril(w, format="csr") + sp.tril(w, k=-1, format="csr").T).tocsr()
    warnings.warn(
        f"{path}: the GO edge list is not symmetric; undirected weight = max(w[i,j], w[j,i])",
        stacklevel=2,
    )
    return w.maximum(w.T).tocsr()


def go_graph_embedding(csv_path: str | os.PathLike[str], dim: int) -> pd.DataFrame:
    """Adjacency spectral embedding of GEARS' GO graph (paper's ``gearsPertEmb``).

    Parameters
    ----------
    csv_path
        ``go_essential_all.csv`` with columns ``source``, ``target``, ``importance`` (read in
        chunks; other columns are ignored).
    dim
        Embedding dimension ``d`` (``1 <= d <= number of genes``).

    Returns
    -------
    pandas.DataFrame
        Gene table (genes sorted) of ``U |Λ|^½`` for the ``d`` eigenvalues of
        ``M = A + diag(strength / (n - 1))`` with largest magnitude (igraph's
        ``embed_adjacency_matrix(which = "lm", scaled = TRUE)`` with its default ``cvec``; see
        the module docstring for the multi-edge and self-loop rules), ordered by decreasing
        ``|λ|`` (ties: larger ``λ`` first). Each eigenvector's sign is fixed so that its entry of
        largest magnitude is positive (the first such entry on exact ties). The eigenvalues are
        in ``df.attrs["eigenvalues"]``. ARPACK (``eigsh``) starts from a fixed pseudo-random
        vector; with ``d >= n - 1`` a dense ``eigh`` is used.

    Raises
    ------
    InputDataError
        Unreadable file, missing columns, no edges or non-finite importance.
    ValueError
        ``dim`` outside ``1 … n``.
    """
    if dim < 1:
        raise ValueError(f"embedding dimension must be at least 1, got {dim}")
    genes, sources, targets, weights = read_go_edges(csv_path)
    order = np.argsort(np.array(genes, dtype=object), kind="stable")
    rank = np.empty(len(genes), dtype=np.int32)
    rank[order] = np.arange(len(genes), dtype=np.int32)
    adjacency = go_adjacency(len(genes), rank[sources], rank[targets], weights, csv_path)
    values, vectors = adjacency_spectral_embedding(adjacency, dim)
    table = make_gene_table([genes[k] for k in order], vectors, csv_path)
    table.attrs["eigenvalues"] = values.tolist()
    return table


def adjacency_spectral_embedding(adjacency: sp.spmatrix, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and scaled embedding ``U |Λ|^½`` of ``A + diag(strength / (n - 1))``.

    Parameters
    ----------
    adjacency
        Symmetric ``n × n`` weighted adjacency; the diagonal holds self-loop weights.
    dim
        Number of eigenpairs (largest magnitude).

    Returns
    -------
    eigenvalues, embedding
        ``(dim,)`` eigenvalues by decreasing ``|λ|`` and the ``(n, dim)`` embedding with the
        deterministic sign rule of :func:`go_graph_embedding`.
    """
    n = adjacency.shape[0]
    if not 1 <= dim <= n:
        raise ValueError(f"embedding dimension {dim} must be between 1 and the number of genes ({n})")
    matrix = igraph_augmented_adjacency(adjacency)
    if dim >= n - 1:
        values, vectors = np.linalg.eigh(matrix.toarray())
    else:
        v0 = np.random.default_rng(_ARPACK_SEED).uniform(-1.0, 1.0, n)
        try:
            values, vectors = eigsh(matrix, k=dim, which="LM", v0=v0, tol=0.0, maxiter=max(1000, 20 * n))
        except ArpackNoConvergence as err:
            raise RuntimeError(f"ARPACK did not converge for {dim} eigenpairs of the GO graph ({err})") from err
    keep = np.lexsort((-values, -np.abs(values)))[:dim]
    values, vectors = values[keep], vectors[:, keep]
    return values, fix_signs(vectors) * np.sqrt(np.abs(values))


def igraph_augmented_adjacency(adjacency: sp.spmatrix) -> sp.csr_matrix:
    """``A + diag(s / (n - 1))`` with igraph's strength ``s_i = sum_{j != i} A_ij + 2 A_ii``."""
    adjacency = sp.csr_matrix(adjacency, dtype=np.float64)
    n = adjacency.shape[0]
    strength = np.asarray(adjacency.sum(axis=1)).ravel() + adjacency.diagonal()
    cvec = strength / (n - 1) if n > 1 else np.zeros(n)
    return (adjacency + sp.diags(cvec)).tocsr()
