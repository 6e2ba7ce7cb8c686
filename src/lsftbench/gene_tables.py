"""Pretrained gene embedding tables (SPEC section 4): scGPT, scFoundation, GEARS GO graph, user tables.

A *gene table* is a :class:`pandas.DataFrame` with one row per gene: the index holds unique gene
symbols (``str``, index name ``"gene"``) and the columns ``dim_0 … dim_{d-1}`` hold ``float64``
embedding coordinates. Every reader in this module returns that shape and validates it; every
error names the offending file (:class:`lsftbench.data.InputDataError`, a ``ValueError``).

Besides the extractors, the module writes small *synthetic* checkpoints with the real file
layouts (key names, shapes, special tokens), so the pipeline's offline default runs the same code
paths as a run on the real scGPT / scFoundation / GEARS files.

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

import csv
import gzip
import json
import os
import pickle
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import ArpackNoConvergence, eigsh

from .data import InputDataError
from .io import atomic_path

__all__ = [
    "LAYOUTS",
    "SCGPT_LAYERNORM_EPS",
    "SCFOUNDATION_N_SPECIAL",
    "read_gene_table",
    "write_gene_table",
    "make_gene_table",
    "extract_scgpt",
    "extract_scfoundation",
    "go_graph_embedding",
    "read_go_edges",
    "go_adjacency",
    "adjacency_spectral_embedding",
    "igraph_augmented_adjacency",
    "write_synthetic_scgpt_checkpoint",
    "write_synthetic_scfoundation_checkpoint",
    "write_synthetic_go_graph",
]

LAYOUTS = ("auto", "genes_as_columns", "genes_as_rows")
SCGPT_LAYERNORM_EPS = 1e-5
SCFOUNDATION_N_SPECIAL = 3
SCFOUNDATION_SPECIAL_TOKENS = ("log10TotalCount1", "log10TotalCount2", "<pad>")
SCGPT_SPECIAL_TOKENS = ("<pad>", "<cls>", "<eoc>")
GO_COLUMNS = ("source", "target", "importance")

_GENE_HEADERS = {"gene", "genes", "gene_name", "gene_symbol", "symbol"}
_DIM_LABEL_HEADERS = {"", "dim", "dims", "dimension", "component"}
_ARPACK_SEED = 20240917


# --------------------------------------------------------------------------------------------
# Gene table construction and validation
# --------------------------------------------------------------------------------------------


def make_gene_table(genes: Iterable[Any], values: Any, path: str | os.PathLike[str] = "<table>") -> pd.DataFrame:
    """Validate genes and a genes × dims block and return a gene table.

    Parameters
    ----------
    genes
        One symbol per row of ``values``.
    values
        Array-like or data frame of shape ``(len(genes), d)``; object columns are parsed as numbers.
    path
        Named in error messages.

    Returns
    -------
    pandas.DataFrame
        Index ``gene`` (str), columns ``dim_0 … dim_{d-1}``, float64.

    Raises
    ------
    InputDataError
        Zero genes or dimensions, missing/empty/duplicated gene names, non-numeric, NaN or infinite
        values.
    """
    names = _gene_names(genes, path)
    frame = values if isinstance(values, pd.DataFrame) else pd.DataFrame(np.asarray(values))
    if frame.ndim != 2 or frame.shape[0] != len(names):
        raise InputDataError(path, f"{len(names)} genes but a value block of shape {frame.shape}")
    if frame.shape[1] == 0:
        raise InputDataError(path, "no embedding dimensions (no numeric columns)")
    array = _numeric_array(frame.reset_index(drop=True), names, path)
    table = pd.DataFrame(array, index=pd.Index(names, name="gene", dtype=object))
    table.columns = [f"dim_{k}" for k in range(array.shape[1])]
    return table


def _gene_names(genes: Iterable[Any], path: str | os.PathLike[str]) -> list[str]:
    """Gene symbols as a list of non-empty, unique ``str``."""
    raw = list(genes)
    if not raw:
        raise InputDataError(path, "zero genes")
    missing = [k for k, g in enumerate(raw) if g is None or (isinstance(g, float) and np.isnan(g))]
    if missing:
        raise InputDataError(path, f"{len(missing)} missing gene names (first at gene position {missing[0]})")
    names = [str(g) for g in raw]
    empty = [k for k, g in enumerate(names) if not g.strip()]
    if empty:
        raise InputDataError(path, f"{len(empty)} empty gene names (first at gene position {empty[0]})")
    dup = pd.Index(names)
    dup = dup[dup.duplicated()].unique()
    if len(dup):
        shown = ", ".join(dup[:5])
        raise InputDataError(path, f"{len(dup)} duplicated gene names (e.g. {shown})")
    return names


def _numeric_array(frame: pd.DataFrame, genes: Sequence[str], path: str | os.PathLike[str]) -> np.ndarray:
    """Float64 array of a genes × dims frame; rejects non-numeric, NaN and infinite entries."""
    columns = []
    for k in range(frame.shape[1]):
        series = frame.iloc[:, k]
        if not pd.api.types.is_numeric_dtype(series):
            parsed = pd.to_numeric(series, errors="coerce")
            bad = np.flatnonzero((parsed.isna() & series.notna()).to_numpy())
            if bad.size:
                raise InputDataError(
                    path, f"non-numeric value {series.iloc[bad[0]]!r} for gene {genes[bad[0]]!r} in dimension {k}"
                )
            series = parsed
        columns.append(series.to_numpy(dtype=np.float64))
    array = np.column_stack(columns) if columns else np.empty((len(genes), 0))
    bad_rows, bad_cols = np.nonzero(~np.isfinite(array))
    if bad_rows.size:
        raise InputDataError(
            path,
            f"{bad_rows.size} NaN/missing or infinite values (first for gene {genes[bad_rows[0]]!r}, "
            f"dimension {bad_cols[0]})",
        )
    return array


# --------------------------------------------------------------------------------------------
# Reading and writing user tables
# --------------------------------------------------------------------------------------------


def read_gene_table(path: str | os.PathLike[str], layout: str = "auto") -> pd.DataFrame:
    """Read a gene embedding table from TSV/CSV (optionally ``.gz``) or Parquet.

    Parameters
    ----------
    path
        ``.tsv``/``.txt``/``.tab`` (tab-separated), ``.csv`` (comma-separated), each optionally
        gzipped, or ``.parquet``/``.pq``.
    layout
        ``"genes_as_columns"``: the paper's layout, one column per gene (header = gene symbols)
        and one row per dimension; a first column headed ``""``/``dim``/``dims``/``dimension``/
        ``component`` or holding non-numeric values is a dimension label and is dropped.
        ``"genes_as_rows"``: one row per gene, the first column (or a Parquet file's non-default
        index) holds the genes, all other columns are dimensions (their names are ignored).
        ``"auto"`` (default): Parquet is read as rows; for delimited text, a first header field
        named ``gene``/``genes``/``gene_name``/``gene_symbol``/``symbol`` means rows, otherwise
        the table is genes-as-columns exactly when the header has more fields than the file has
        data rows (a genes × d table with more dimensions than genes is thus misread as
        columns: pass ``layout`` explicitly for such tiny tables).

    Returns
    -------
    pandas.DataFrame
        Gene table (index ``gene``, columns ``dim_0 …``, float64).

    Raises
    ------
    InputDataError
        Unknown layout or suffix, unreadable file, zero genes, duplicated genes, non-numeric or
        NaN/infinite values; the message names the file.
    """
    path = Path(path)
    if layout not in LAYOUTS:
        raise InputDataError(path, f"unknown layout {layout!r} (expected one of {', '.join(LAYOUTS)})")
    if not path.is_file():
        raise InputDataError(path, "file does not exist")
    kind = _table_kind(path)
    if kind == "parquet":
        return _read_parquet_table(path, layout)
    return _read_text_table(path, layout, sep="," if kind == "csv" else "\t")


def _table_kind(path: Path) -> str:
    """``"parquet"``, ``"csv"`` or ``"tsv"`` from the file suffixes."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in {".parquet", ".pq"}:
        return "parquet"
    if last == ".csv":
        return "csv"
    if last in {".tsv", ".txt", ".tab"}:
        return "tsv"
    raise InputDataError(path, f"unknown table format {last or '(no suffix)'!r} (use .tsv, .csv or .parquet)")


def _read_header(path: Path, sep: str) -> list[str]:
    """Fields of the first line of a delimited text file (quotes honoured, gzip supported)."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt", newline="") as handle:  # type: ignore[operator]
            header = next(csv.reader(handle, delimiter=sep), None)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputDataError(path, f"not a readable text table ({type(err).__name__}: {err})") from err
    if not header:
        raise InputDataError(path, "empty file (no header line)")
    return header


def _read_text_body(path: Path, sep: str, **kwargs: Any) -> pd.DataFrame:
    """Data lines (everything after the header) of a delimited text file, no column names."""
    try:
        return pd.read_csv(
            path, sep=sep, header=None, skiprows=1, low_memory=False, float_precision="round_trip", **kwargs
        )
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise InputDataError(path, f"not a readable table ({type(err).__name__}: {err})") from err


def _read_text_table(path: Path, layout: str, sep: str) -> pd.DataFrame:
    """Delimited text gene table in either layout."""
    header = _read_header(path, sep)
    body = _read_text_body(path, sep)
    if body.shape[0] == 0:
        raise InputDataError(path, "zero genes: the table has a header but no data rows")
    if layout == "auto":
        by_rows = header[0].strip().lower() in _GENE_HEADERS or len(header) <= body.shape[0]
        layout = "genes_as_rows" if by_rows else "genes_as_columns"
    if layout == "genes_as_columns":
        if body.shape[1] != len(header):
            raise InputDataError(path, f"header has {len(header)} fields but data rows have {body.shape[1]}")
        return _columns_layout(path, list(header), body)
    genes = _read_text_body(path, sep, usecols=[0], dtype=str, na_filter=False).iloc[:, 0]
    return make_gene_table(genes.tolist(), body.iloc[:, 1:], path)


def _columns_layout(path: Path, genes: list[Any], body: pd.DataFrame) -> pd.DataFrame:
    """Gene table from a dims × genes block whose column labels are ``genes``."""
    first = body.iloc[:, 0] if body.shape[1] else None
    first_is_label = first is not None and (
        str(genes[0]).strip().lower() in _DIM_LABEL_HEADERS
        or not pd.api.types.is_numeric_dtype(first)
        and pd.to_numeric(first, errors="coerce").isna().any()
    )
    if first_is_label:
        genes, body = genes[1:], body.iloc[:, 1:]
    names = _gene_names(genes, path)
    values = body.T.reset_index(drop=True)
    return make_gene_table(names, values, path)


def _read_parquet_table(path: Path, layout: str) -> pd.DataFrame:
    """Parquet gene table; ``auto`` means genes as rows."""
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # noqa: BLE001 - any reader failure is an input problem
        raise InputDataError(path, f"not a readable Parquet file ({type(err).__name__}: {err})") from err
    if layout == "genes_as_columns":
        return _columns_layout(path, list(frame.columns), frame.reset_index(drop=True))
    if not isinstance(frame.index, pd.RangeIndex):
        return make_gene_table(frame.index.tolist(), frame.reset_index(drop=True), path)
    if frame.shape[1] == 0:
        raise InputDataError(path, "zero genes: the table has no columns")
    return make_gene_table(frame.iloc[:, 0].tolist(), frame.iloc[:, 1:], path)


def write_gene_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a gene table as TSV, one row per gene (header ``gene, dim_0, …``), atomically.

    Parameters
    ----------
    df
        Genes × dims table; it is validated (and columns renamed ``dim_k``) before writing.
    path
        Destination; floats are written with round-trip precision, so :func:`read_gene_table`
        returns an identical frame.
    """
    table = make_gene_table(df.index.tolist(), df.reset_index(drop=True), path)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=True, index_label="gene", float_format="%.17g")


# --------------------------------------------------------------------------------------------
# Torch checkpoints
# --------------------------------------------------------------------------------------------


def _torch_load(path: Path, trust_pickle: bool = False) -> Any:
    """``torch.load`` on CPU with ``weights_only=True`` (optionally falling back to full pickle)."""
    import torch

    if not path.is_file():
        raise InputDataError(path, "file does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not trust_pickle:
            raise InputDataError(
                path,
                "checkpoint holds objects other than tensors and plain containers, which "
                "weights_only loading refuses; pass trust_pickle=True only for a file you trust "
                f"({err})",
            ) from err
    except Exception as err:  # noqa: BLE001 - any reader failure is an input problem
        raise InputDataError(path, f"not a readable torch checkpoint ({type(err).__name__}: {err})") from err
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001
        raise InputDataError(path, f"not a readable torch checkpoint ({type(err).__name__}: {err})") from err


def _tensor(container: Any, key: str, path: Path, ndim: int) -> np.ndarray:
    """``container[key]`` as a float64 array with ``ndim`` dimensions."""
    import torch

    if not isinstance(container, dict) or key not in container:
        raise InputDataError(path, f"checkpoint has no tensor {key!r}")
    value = container[key]
    if not isinstance(value, torch.Tensor):
        raise InputDataError(path, f"{key!r} is a {type(value).__name__}, not a tensor")
    if value.ndim != ndim:
        raise InputDataError(path, f"{key!r} has shape {tuple(value.shape)}, expected {ndim} dimensions")
    return value.detach().to(torch.float64).numpy()


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """``torch.nn.LayerNorm`` over the last axis (biased variance), in float64."""
    centred = x - x.mean(axis=1, keepdims=True)
    variance = np.mean(centred**2, axis=1, keepdims=True)
    return centred / np.sqrt(variance + eps) * weight + bias


def _read_scgpt_vocab(path: Path) -> dict[str, int]:
    """``vocab.json`` as token → non-negative, unique integer id."""
    if not path.is_file():
        raise InputDataError(path, "file does not exist")
    try:
        vocab = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputDataError(path, f"not valid JSON ({err})") from err
    if not isinstance(vocab, dict) or not vocab:
        raise InputDataError(path, "expected a non-empty JSON object mapping token -> id")
    bad = [t for t, i in vocab.items() if isinstance(i, bool) or not isinstance(i, int) or i < 0]
    if bad:
        raise InputDataError(path, f"{len(bad)} tokens without a non-negative integer id (e.g. {bad[0]!r})")
    ids = pd.Index(list(vocab.values()))
    if ids.has_duplicates:
        raise InputDataError(path, f"{int(ids.duplicated().sum())} ids are used by more than one token")
    return vocab


def extract_scgpt(checkpoint_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Gene table of scGPT's data-independent gene embeddings (``model.encoder(ids)``).

    Parameters
    ----------
    checkpoint_dir
        Directory with ``best_model.pt`` (state dict), ``vocab.json`` (token → id) and
        ``args.json``.

    Returns
    -------
    pandas.DataFrame
        One row per vocabulary token that is not a special token (tokens starting with ``<``,
        e.g. ``<pad>``, ``<cls>``, ``<eoc>``), in id order: ``encoder.embedding.weight[id]``
        passed through LayerNorm with ``encoder.enc_norm.weight``/``bias`` and eps ``1e-5``,
        computed in float64 (torch computes it in float32: differences ~1e-7 relative).

    Raises
    ------
    InputDataError
        Missing files or keys, ids outside the embedding, LayerNorm or ``args.json["embsize"]``
        not matching the embedding width.
    """
    directory = Path(checkpoint_dir)
    model_file, vocab_file, args_file = (directory / n for n in ("best_model.pt", "vocab.json", "args.json"))
    vocab = _read_scgpt_vocab(vocab_file)
    if not args_file.is_file():
        raise InputDataError(args_file, "file does not exist")
    try:
        args = json.loads(args_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputDataError(args_file, f"not valid JSON ({err})") from err
    state = _torch_load(model_file)
    embedding = _tensor(state, "encoder.embedding.weight", model_file, ndim=2)
    weight = _tensor(state, "encoder.enc_norm.weight", model_file, ndim=1)
    bias = _tensor(state, "encoder.enc_norm.bias", model_file, ndim=1)
    width = embedding.shape[1]
    if weight.shape != (width,) or bias.shape != (width,):
        raise InputDataError(
            model_file, f"enc_norm weight/bias shapes {weight.shape}/{bias.shape} do not match embedding width {width}"
        )
    if isinstance(args, dict) and "embsize" in args and args["embsize"] != width:
        raise InputDataError(args_file, f"embsize {args['embsize']} but encoder.embedding.weight is {embedding.shape}")
    genes = sorted((i, t) for t, i in vocab.items() if not t.startswith("<"))
    if not genes:
        raise InputDataError(vocab_file, "no gene tokens (all tokens are special tokens starting with '<')")
    ids = np.array([i for i, _ in genes], dtype=np.int64)
    if ids.max() >= embedding.shape[0]:
        raise InputDataError(
            model_file,
            f"vocab.json ({vocab_file}) has ids up to {int(ids.max())} but encoder.embedding.weight has "
            f"only {embedding.shape[0]} rows",
        )
    values = _layer_norm(embedding[ids], weight, bias, SCGPT_LAYERNORM_EPS)
    return make_gene_table([t for _, t in genes], values, model_file)


def _read_gene_list(path: Path) -> list[str]:
    """Genes of a model gene list: a ``gene_name`` column (TSV/CSV with header) or one per line."""
    if not path.is_file():
        raise InputDataError(path, "file does not exist")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputDataError(path, f"not a readable text file ({err})") from err
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise InputDataError(path, "zero genes: the gene list is empty")
    sep = "\t" if "\t" in lines[0] else ","
    header = [field.strip() for field in next(csv.reader([lines[0]], delimiter=sep))]
    if "gene_name" in header:
        column = header.index("gene_name")
        rows = list(csv.reader(lines[1:], delimiter=sep))
        short = [k for k, row in enumerate(rows) if len(row) <= column]
        if short:
            raise InputDataError(path, f"line {short[0] + 2} has no gene_name field")
        genes = [row[column].strip() for row in rows]
    else:
        genes = [line.split("\t")[0].strip() for line in lines]
    return _gene_names(genes, path)


def extract_scfoundation(
    ckpt_path: str | os.PathLike[str],
    gene_list_path: str | os.PathLike[str],
    trust_pickle: bool = False,
) -> pd.DataFrame:
    """Gene table of scFoundation's gene (positional) embeddings.

    Parameters
    ----------
    ckpt_path
        ``models.ckpt``; the table is ``ckpt["gene"]["state_dict"]["model.pos_emb.weight"]``.
    gene_list_path
        The model's gene list (``OS_scRNA_gene_index.19264.tsv``): a TSV/CSV with a
        ``gene_name`` column, or plain text with one gene per line (first tab field).
    trust_pickle
        The checkpoint is loaded with ``weights_only=True``; if it holds other Python objects
        this fails with a clear error unless ``trust_pickle`` allows a full unpickle (only for
        files you trust).

    Returns
    -------
    pandas.DataFrame
        One row per listed gene, in list order. The embedding has ``len(genes) + 3`` rows: the
        three special tokens appended at its end (``log10TotalCount1``, ``log10TotalCount2``,
        ``<pad>``) are dropped.

    Raises
    ------
    InputDataError
        Missing files or keys, or an embedding whose row count is not ``len(genes) + 3``.
    """
    ckpt_path, gene_list_path = Path(ckpt_path), Path(gene_list_path)
    genes = _read_gene_list(gene_list_path)
    ckpt = _torch_load(ckpt_path, trust_pickle=trust_pickle)
    gene_part = ckpt.get("gene") if isinstance(ckpt, dict) else None
    state = gene_part.get("state_dict") if isinstance(gene_part, dict) else None
    if not isinstance(state, dict):
        raise InputDataError(ckpt_path, "checkpoint has no ckpt['gene']['state_dict'] dictionary")
    embedding = _tensor(state, "model.pos_emb.weight", ckpt_path, ndim=2)
    expected = len(genes) + SCFOUNDATION_N_SPECIAL
    if embedding.shape[0] != expected:
        raise InputDataError(
            ckpt_path,
            f"model.pos_emb.weight has {embedding.shape[0]} rows but the gene list {gene_list_path} has "
            f"{len(genes)} genes (+{SCFOUNDATION_N_SPECIAL} special tokens = {expected})",
        )
    return make_gene_table(genes, embedding[: len(genes)], ckpt_path)


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
    return values, _fix_signs(vectors) * np.sqrt(np.abs(values))


def igraph_augmented_adjacency(adjacency: sp.spmatrix) -> sp.csr_matrix:
    """``A + diag(s / (n - 1))`` with igraph's strength ``s_i = sum_{j != i} A_ij + 2 A_ii``."""
    adjacency = sp.csr_matrix(adjacency, dtype=np.float64)
    n = adjacency.shape[0]
    strength = np.asarray(adjacency.sum(axis=1)).ravel() + adjacency.diagonal()
    cvec = strength / (n - 1) if n > 1 else np.zeros(n)
    return (adjacency + sp.diags(cvec)).tocsr()


def _fix_signs(vectors: np.ndarray) -> np.ndarray:
    """Flip each column so that its entry of largest magnitude is positive."""
    if vectors.size == 0:
        return vectors
    pivot = np.argmax(np.abs(vectors), axis=0)
    signs = np.sign(vectors[pivot, np.arange(vectors.shape[1])])
    signs[signs == 0] = 1.0
    return vectors * signs


# --------------------------------------------------------------------------------------------
# Synthetic stand-ins
# --------------------------------------------------------------------------------------------


def _synthetic_embedding(
    genes: Sequence[str], dim: int, rng: np.random.Generator, signal: pd.DataFrame | None
) -> np.ndarray:
    """``len(genes) × dim`` matrix: standardised ``signal`` rows times a random projection + N(0, 1).

    Genes absent from ``signal`` get noise only. The signal part has unit variance per
    dimension on average, so roughly half of each coordinate's variance is true structure.
    """
    noise = rng.standard_normal((len(genes), dim))
    if signal is None or signal.shape[1] == 0:
        return noise
    loadings = signal.reindex(pd.Index([str(g) for g in genes])).to_numpy(dtype=np.float64)
    present = np.isfinite(loadings).all(axis=1)
    if not present.any():
        return noise
    known = loadings[present]
    spread = known.std(axis=0)
    spread[spread == 0] = 1.0
    standardised = np.zeros_like(loadings)
    standardised[present] = (known - known.mean(axis=0)) / spread
    projection = rng.standard_normal((signal.shape[1], dim)) / np.sqrt(signal.shape[1])
    return standardised @ projection + noise


def write_synthetic_scgpt_checkpoint(
    out_dir: str | os.PathLike[str],
    genes: Sequence[str],
    dim: int = 32,
    seed: int = 0,
    signal: pd.DataFrame | None = None,
) -> Path:
    """Write a small scGPT checkpoint directory with the real file layout.

    ``vocab.json`` maps ``<pad>``, ``<cls>``, ``<eoc>`` and every gene to shuffled ids;
    ``best_model.pt`` is a state dict with ``encoder.embedding.weight`` (``len(vocab) × dim``),
    ``encoder.enc_norm.weight``/``bias`` and a few other realistic keys; ``args.json`` has
    ``embsize = dim`` and ``"synthetic": true``. With ``signal`` (genes × r latent loadings)
    the gene rows carry that structure plus N(0, 1) noise (see :func:`_synthetic_embedding`).

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    import torch

    rng = np.random.default_rng(seed)
    tokens = [*SCGPT_SPECIAL_TOKENS, *map(str, genes)]
    ids = rng.permutation(len(tokens))
    vocab = {token: int(i) for token, i in zip(tokens, ids, strict=True)}
    embedding = rng.standard_normal((len(tokens), dim))
    embedding[ids[len(SCGPT_SPECIAL_TOKENS) :]] = _synthetic_embedding(genes, dim, rng, signal)
    state = {
        "encoder.embedding.weight": embedding,
        "encoder.enc_norm.weight": 1.0 + 0.1 * rng.standard_normal(dim),
        "encoder.enc_norm.bias": 0.1 * rng.standard_normal(dim),
        "value_encoder.linear1.weight": rng.standard_normal((dim, 1)),
        "value_encoder.linear1.bias": rng.standard_normal(dim),
        "transformer_encoder.layers.0.self_attn.out_proj.weight": rng.standard_normal((dim, dim)) / np.sqrt(dim),
    }
    state_dict = {key: torch.tensor(value, dtype=torch.float32) for key, value in state.items()}
    args = {"embsize": dim, "nheads": 4, "d_hid": dim, "nlayers": 1, "n_layers_cls": 3, "dropout": 0.2,
            "pad_token": "<pad>", "seed": seed, "synthetic": True}
    out = Path(out_dir)
    with atomic_path(out / "best_model.pt") as tmp:
        torch.save(state_dict, tmp)
    with atomic_path(out / "vocab.json") as tmp:
        tmp.write_text(json.dumps(vocab, indent=1) + "\n")
    with atomic_path(out / "args.json") as tmp:
        tmp.write_text(json.dumps(args, indent=2) + "\n")
    return out


def write_synthetic_scfoundation_checkpoint(
    ckpt_path: str | os.PathLike[str],
    gene_list_path: str | os.PathLike[str],
    genes: Sequence[str],
    dim: int = 32,
    seed: int = 0,
    signal: pd.DataFrame | None = None,
) -> None:
    """Write a small scFoundation ``models.ckpt`` and its gene list (``index``/``gene_name`` TSV).

    The checkpoint is ``{"gene": {"state_dict": {"model.pos_emb.weight": (len(genes) + 3) × dim,
    …}, "config": {…, "synthetic": True}}, "cell": {…}}``; the last three embedding rows are the
    special tokens. ``signal`` works as in :func:`write_synthetic_scgpt_checkpoint`.
    """
    import torch

    rng = np.random.default_rng(seed)
    gene_rows = _synthetic_embedding(genes, dim, rng, signal)
    pos_emb = np.vstack([gene_rows, rng.standard_normal((SCFOUNDATION_N_SPECIAL, dim))])

    def tensor(value: np.ndarray) -> torch.Tensor:
        return torch.tensor(value, dtype=torch.float32)

    config = {"encoder": {"hidden_dim": dim, "depth": 1, "heads": 4}, "seq_len": len(genes) + 3, "synthetic": True}
    gene_state = {
        "model.pos_emb.weight": tensor(pos_emb),
        "model.token_emb.weight": tensor(rng.standard_normal((1, dim))),
        "model.to_final.weight": tensor(rng.standard_normal((1, dim))),
    }
    ckpt = {
        "gene": {"state_dict": gene_state, "config": config},
        "cell": {"state_dict": {"model.pos_emb.weight": tensor(pos_emb.copy())}, "config": config},
    }
    with atomic_path(ckpt_path) as tmp:
        torch.save(ckpt, tmp)
    listing = pd.DataFrame({"index": np.arange(len(genes)), "gene_name": [str(g) for g in genes]})
    with atomic_path(gene_list_path) as tmp:
        listing.to_csv(tmp, sep="\t", index=False)


def write_synthetic_go_graph(
    csv_path: str | os.PathLike[str],
    genes: Sequence[str],
    seed: int = 0,
    mean_degree: float = 10.0,
    signal: pd.DataFrame | None = None,
) -> None:
    """Write a sparse random weighted GO-like graph in GEARS' ``go_essential_all.csv`` layout.

    Genes fall into communities of ~30 (with ``signal``: by the sign and column of their largest
    absolute loading, so communities follow the true structure). Each gene draws
    ``Poisson(mean_degree / 2)`` partners, 80 % from its own community; within-community weights
    are U(0.3, 0.9), others U(0.1, 0.3) (Jaccard-like, > 0.1 as in GEARS). Like the real file,
    every pair is listed in both directions with the same weight and every gene has a self-loop
    of importance 1.0, so the mean number of distinct neighbours is about ``mean_degree``.
    """
    rng = np.random.default_rng(seed)
    names = [str(g) for g in genes]
    n = len(names)
    community = _synthetic_communities(names, rng, signal)
    members = pd.Series(np.arange(n)).groupby(community).apply(np.asarray).to_dict()
    pairs: dict[tuple[int, int], float] = {}
    for i in range(n):
        for _ in range(rng.poisson(mean_degree / 2.0)):
            same = rng.random() < 0.8 and len(members[community[i]]) > 1
            j = int(rng.choice(members[community[i]])) if same else int(rng.integers(n))
            if j == i:
                continue
            inside = community[i] == community[j]
            weight = rng.uniform(0.3, 0.9) if inside else rng.uniform(0.1, 0.3)
            pairs.setdefault((min(i, j), max(i, j)), float(weight))
    rows = [(i, i, 1.0) for i in range(n)]
    rows += [(i, j, w) for (i, j), w in pairs.items()] + [(j, i, w) for (i, j), w in pairs.items()]
    rows.sort()
    edges = pd.DataFrame(
        {"source": [names[i] for i, _, _ in rows], "target": [names[j] for _, j, _ in rows],
         "importance": [w for _, _, w in rows]}
    )
    with atomic_path(csv_path) as tmp:
        edges.to_csv(tmp, index=False)


def _synthetic_communities(
    names: Sequence[str], rng: np.random.Generator, signal: pd.DataFrame | None
) -> np.ndarray:
    """Community label per gene: from ``signal`` loadings when given, else random groups of ~30."""
    n = len(names)
    labels = rng.integers(max(1, n // 30), size=n)
    if signal is None or signal.shape[1] == 0:
        return labels
    loadings = signal.reindex(pd.Index(names)).to_numpy(dtype=np.float64)
    present = np.isfinite(loadings).all(axis=1)
    strongest = np.argmax(np.abs(np.where(present[:, None], loadings, 0.0)), axis=1)
    sign = np.sign(loadings[np.arange(n), strongest]) > 0
    offset = int(labels.max()) + 1
    return np.where(present, offset + 2 * strongest + sign, labels)
