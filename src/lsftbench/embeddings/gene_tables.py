"""Gene tables: reading, validating and writing gene embedding tables (SPEC section 4).

A *gene table* is a :class:`pandas.DataFrame` with one row per gene: the index holds unique gene
symbols (``str``, index name ``"gene"``) and the columns ``dim_0 … dim_{d-1}`` hold ``float64``
embedding coordinates. Every reader returns that shape and validates it; every error names the
offending file (:class:`lsftbench.data.h5ad.InputDataError`, a ``ValueError``).

Tables come from users (TSV in the paper's layout, CSV, Parquet), from checkpoints
(:mod:`lsftbench.embeddings.pretrained`) or from the GEARS GO graph (:mod:`lsftbench.embeddings.go_graph`).
"""

from __future__ import annotations

import csv
import gzip
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.conditions import single_gene
from ..io import InputDataError, atomic_path

__all__ = [
    "LAYOUTS",
    "read_gene_table",
    "write_gene_table",
    "make_gene_table",
    "check_table_coverage",
    "check_baseline_tables",
    "read_baseline_tables",
]

LAYOUTS = ("auto", "genes_as_columns", "genes_as_rows")
_GENE_HEADERS = {"gene", "genes", "gene_name", "gene_symbol", "symbol"}
_DIM_LABEL_HEADERS = {"", "dim", "dims", "dimension", "component"}

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
        Gene table (index ``gene``, columns ``dim_0 …``, float64); ``attrs["layout"]`` records the
        layout it was read in (the detected one for ``"auto"``), ``attrs["source"]`` the file.

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
        table, used = _read_parquet_table(path, layout)
    else:
        table, used = _read_text_table(path, layout, sep="," if kind == "csv" else "\t")
    table.attrs["layout"] = used
    table.attrs["source"] = str(path)
    return table


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


def _read_text_table(path: Path, layout: str, sep: str) -> tuple[pd.DataFrame, str]:
    """Delimited text gene table in either layout, and the layout used."""
    header = _read_header(path, sep)
    other = "\t" if sep == "," else ","
    if len(header) == 1 and other in header[0]:
        names = {",": "comma", "\t": "tab"}
        raise InputDataError(
            path, f"the file name says {names[sep]}-separated but its header line is "
                  f"{names[other]}-separated ({len(header[0].split(other))} fields): rename it to "
                  f"{'.tsv' if other == chr(9) else '.csv'}, or write it with {names[sep]}s",
        )
    body = _read_text_body(path, sep)
    if body.shape[0] == 0:
        raise InputDataError(path, "zero genes: the table has a header but no data rows")
    if layout == "auto":
        by_rows = header[0].strip().lower() in _GENE_HEADERS or len(header) <= body.shape[0]
        layout = "genes_as_rows" if by_rows else "genes_as_columns"
    if layout == "genes_as_columns":
        if body.shape[1] != len(header):
            raise InputDataError(path, f"header has {len(header)} fields but data rows have {body.shape[1]}")
        return _columns_layout(path, list(header), body), layout
    genes = _read_text_body(path, sep, usecols=[0], dtype=str, na_filter=False).iloc[:, 0]
    return make_gene_table(genes.tolist(), body.iloc[:, 1:], path), layout


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


def _read_parquet_table(path: Path, layout: str) -> tuple[pd.DataFrame, str]:
    """Parquet gene table (``auto`` means genes as rows), and the layout used."""
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # noqa: BLE001 - any reader failure is an input problem
        raise InputDataError(path, f"not a readable Parquet file ({type(err).__name__}: {err})") from err
    if layout == "genes_as_columns":
        return _columns_layout(path, list(frame.columns), frame.reset_index(drop=True)), layout
    if not isinstance(frame.index, pd.RangeIndex):
        return make_gene_table(frame.index.tolist(), frame.reset_index(drop=True), path), "genes_as_rows"
    if frame.shape[1] == 0:
        raise InputDataError(path, "zero genes: the table has no columns")
    return make_gene_table(frame.iloc[:, 0].tolist(), frame.iloc[:, 1:], path), "genes_as_rows"


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
# Matching a table to a dataset
# --------------------------------------------------------------------------------------------


def check_table_coverage(
    table: pd.DataFrame,
    names: Iterable[str],
    *,
    min_genes: int,
    what: str = "genes of the dataset",
    source: str | os.PathLike[str] | None = None,
    key: str | None = None,
) -> int:
    """Require that a gene table names at least ``min_genes`` of the dataset's genes.

    A table read in the wrong layout, or with symbols in another case or naming scheme, would
    otherwise match few or no genes, and its baseline would show ``NA`` correlations and zero L2.

    Parameters
    ----------
    table
        A gene table (index = gene symbols), e.g. from :func:`read_gene_table`.
    names
        The dataset's names the table must match: its gene symbols for a gene embedding, the
        perturbation targets for a perturbation embedding.
    min_genes
        Smallest acceptable number of matches (config ``metrics.min_table_genes``), capped at the
        number of ``names``; at least 1 is always required.
    what
        What ``names`` are, for the message ("genes of the dataset", "perturbation targets", ...).
    source
        The file named in the error (default ``table.attrs["source"]``).
    key
        The config key that declared the table (e.g. ``baselines.lpm_x.gene``), named in the error.

    Returns
    -------
    int
        The number of ``names`` found in the table.

    Raises
    ------
    InputDataError
        Fewer matches than required; the message names the table, the layout it was read in, how
        many names matched, and examples from both sides (and how many would match ignoring case).
    """
    wanted = list(dict.fromkeys(str(n) for n in names))
    matched = int(pd.Index(wanted).isin(table.index).sum())
    needed = max(1, min(int(min_genes), len(wanted)))  # a dataset smaller than the minimum needs all
    if matched >= needed:
        return matched
    path = source if source is not None else table.attrs.get("source", "<gene table>")
    layout = table.attrs.get("layout")
    upper = {str(g).upper() for g in table.index}
    n_case = sum(n.upper() in upper for n in wanted)
    hints = []
    if n_case > matched:
        hints.append(f"{n_case} would match if upper/lower case were ignored")
    if layout is not None:
        other = "genes_as_rows" if layout == "genes_as_columns" else "genes_as_columns"
        hints.append(f"if the table is really {other}, set layout: {other}")
    declared = f" (declared as {key})" if key else ""
    read_as = f", read as {layout}" if layout else ""
    raise InputDataError(
        path,
        f"gene table{declared}{read_as} matches {matched} of the {len(wanted)} {what}, fewer than the "
        f"required {needed} (metrics.min_table_genes): the table's {len(table.index)} names are e.g. "
        f"{_examples(table.index)}; the dataset's are e.g. {_examples(wanted)}" + "".join(f"; {h}" for h in hints),
    )


def check_baseline_tables(
    spec: dict[str, Any],
    tables: dict[str, pd.DataFrame],
    genes: Iterable[str],
    conditions: Iterable[str],
    *,
    min_genes: int,
    baseline: str,
) -> dict[str, int]:
    """:func:`check_table_coverage` for every table of one baseline on one dataset.

    Parameters
    ----------
    spec
        The baseline's config (``gene`` / ``pert`` parts with ``type``, ``path``, ``checkpoint``).
    tables
        ``{"gene_table": ..., "pert_table": ...}`` as the embedding rule reads them (either may be absent).
    genes
        The dataset's gene symbols (a gene table must name at least ``min_genes`` of them).
    conditions
        The dataset's conditions (e.g. all of the split); a perturbation table must name at least
        ``min_genes`` of the target genes of its single perturbations (the ones a table embeds).
    min_genes
        Config ``metrics.min_table_genes``.
    baseline
        The baseline's name, for the config key in the message.

    Returns
    -------
    dict
        Matches per side (``"gene"``, ``"pert"``) that has a table.
    """
    matched = {}
    for side in ("gene", "pert"):
        table = tables.get(f"{side}_table")
        if table is None:
            continue
        part = spec.get(side) or {}
        origin = None if part.get("type") == "table" else part.get("checkpoint") or part.get("path")
        source = table.attrs.get("source", "<gene table>")
        if origin:
            source = f"{source} (extracted from {origin})"
        names, what = (
            (list(genes), "genes of the dataset")
            if side == "gene"
            else (_single_targets(conditions), "single-perturbation targets of the dataset")
        )
        matched[side] = check_table_coverage(
            table, names, min_genes=min_genes, what=what, source=source, key=f"baselines.{baseline}.{side}"
        )
    return matched


def read_baseline_tables(
    spec: dict[str, Any],
    paths: dict[str, str | os.PathLike[str]],
    genes: Iterable[str],
    conditions: Iterable[str],
    *,
    min_genes: int,
    baseline: str,
) -> dict[str, pd.DataFrame]:
    """Read the tables of one baseline (as the embedding rule gets them) and check their coverage.

    Parameters
    ----------
    spec
        The baseline's config; ``spec[side]["layout"]`` (default ``"auto"``) is the table layout.
    paths
        ``{"gene_table": path, "pert_table": path}`` for the sides that have a table (either may be absent).
    genes
        The dataset's gene symbols.
    conditions
        The dataset's conditions.
    min_genes
        Config ``metrics.min_table_genes``.
    baseline
        The baseline's name.

    Returns
    -------
    dict
        ``{"gene_table": ..., "pert_table": ...}`` for the sides in ``paths``, ready for the embedding.

    Raises
    ------
    InputDataError
        A table that cannot be read (see :func:`read_gene_table`) or that matches fewer than
        ``min_genes`` names of the dataset (see :func:`check_table_coverage`).
    """
    tables = {
        key: read_gene_table(path, layout=(spec.get(key.removesuffix("_table")) or {}).get("layout", "auto"))
        for key, path in paths.items()
    }
    check_baseline_tables(spec, tables, genes, conditions, min_genes=min_genes, baseline=baseline)
    return tables


def _single_targets(conditions: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(g for c in conditions if (g := single_gene(c)) is not None))


def _examples(names: Sequence[Any], k: int = 4) -> str:
    return ", ".join(repr(str(n)) for n in list(names)[:k])
