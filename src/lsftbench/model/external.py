"""Predictions of a model of one's own, read and checked (SPEC 7.3; config ``models:``).

A model is a file per dataset and split seed of predicted mean expression (``quantity: expression``)
or predicted change from the control mean (``quantity: delta``) per condition, in the forms other tools
write:

* AnnData ``.h5ad``, one row per condition (a pseudobulk) or one row per cell (cell-eval, STATE and the
  Virtual Cell Challenge write cells: barcodes as obs names, ``obs["target_gene"]`` holding the perturbed
  gene's symbol or ``non-targeting``), averaged per label (``cell_level``);
* CSV / TSV / Parquet, wide: one row per condition, one column per gene.

**Labels.** From the column the model names (``condition_column``); otherwise from the first of
:data:`LABEL_COLUMNS` the file has (``obs`` columns of an h5ad, columns of a table); otherwise from the obs
names (h5ad) or the first column (tables). The notes say which was used. A label is matched to the dataset's
condition whatever its spelling (``G``, ``G+ctrl``, ``ctrl+G``; ``B+A`` = ``A+B``:
:func:`lsftbench.data.conditions.condition_key`). Control rows (:data:`CONTROL_LABELS`, in any case, or the
model's ``control_label``) are the model's own control and are not evaluated. Two labels that name one
condition (``G`` and ``G+ctrl``) are an error naming both.

**Scale.** ``log`` (log-normalised, as the dataset) or ``counts``: each cell is normalised as the dataset's
cells were (scaled to the dataset's own per-cell total of ``expm1(X)``, its median over the dataset's cells,
:mod:`lsftbench.data.cell_totals`; the cell's own total is over every gene of the file), then ``log1p``, then
averaged. Whole numbers far above the log scale declared ``log`` are an error naming ``scale: counts``.

**Quantity.** Expression rows follow the control mean: their correlation with x̄_ctrl over genes is high
(above :data:`FOLLOWS_CONTROL` for the median row); changes do not. A file whose rows behave as the other
quantity is an error naming it. Negative values are not: a linear model's x̄_ctrl + Δ̂ is negative on low
genes; their share is noted.

**Genes.** Matched by symbol against the dataset's ``var["gene_name"]`` (an AnnData's ``var["gene_name"]``
or its var names; a table's columns). Every measured gene must be predicted: a file with fewer genes (a
gene-table baseline exported by ``snakemake export_predictions`` predicts only the genes its table has) is
refused with the missing genes named, as a model scored on fewer genes would not be comparable with the
others. Genes the dataset does not measure are ignored (noted).

A file ``snakemake export_predictions`` wrote carries the constant it added to every value (so that
cell-eval, which refuses negative expression, can read it) in ``uns["lsftbench_export"]["shift"]``; it is
subtracted here. Training or validation conditions are ignored (noted); a test perturbation the file lacks is
not predicted by the model (its coverage is reported and the common test set shrinks). Everything else that
could make the numbers wrong is an :class:`ExternalModelError`: one line naming the model, the file, the
dataset, the split seed, the problem and its fix.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from ..data.conditions import CTRL, condition_key
from ..formats import LOG_MAX

__all__ = [
    "QUANTITIES",
    "SCALES",
    "CELL_LEVELS",
    "LABEL_COLUMNS",
    "CONTROL_LABELS",
    "EXPORT_KEY",
    "FOLLOWS_CONTROL",
    "ExternalModelError",
    "ExternalPredictions",
    "read_predictions",
]

QUANTITIES = ("expression", "delta")
SCALES = ("log", "counts")
CELL_LEVELS = ("auto", True, False)
#: Columns that may hold the labels, tried in this order when the model names none.
LABEL_COLUMNS = ("condition", "target_gene", "perturbation", "target", "gene")
#: Labels of the model's own control rows (compared ignoring case), besides the model's ``control_label``.
CONTROL_LABELS = (CTRL, "non-targeting", "control")
#: ``uns`` key of the files ``snakemake export_predictions`` writes (their constant shift is undone).
EXPORT_KEY = "lsftbench_export"
#: Median correlation with the control mean over genes above which rows are expression, below which changes.
FOLLOWS_CONTROL = 0.5
_TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".parquet": None, ".pq": None}
_H5AD_SUFFIXES = (".h5ad",)
#: Values per row chunk of a cell-level file (dense float32: 64 MB; the next chunk is read ahead).
_CHUNK_VALUES = 1 << 24

Fail = Callable[[str], NoReturn]


class ExternalModelError(ValueError):
    """A model's predictions cannot be evaluated; the message names the model, file, dataset, seed, problem and fix."""


@dataclass
class ExternalPredictions:
    """A model's predicted changes Δ̂ for the test perturbations it predicts, aligned on the dataset's genes."""

    conditions: list[str]  # test perturbations predicted, in the split's order
    delta: np.ndarray  # genes × conditions, float64
    missing: list[str]  # test perturbations of the split the file lacks
    notes: list[str] = field(default_factory=list)  # what was read how, and what was ignored, for the log


@dataclass
class _Source:
    """A file's rows as read: one label per row, the genes, and its values in row chunks."""

    labels: np.ndarray  # object array of str, one per row
    label_origin: str  # where the labels come from, for the notes and errors
    label_choices: str  # the columns the file has, for the error that asks for condition_column
    genes: list[str]
    chunks: Callable[[], Iterator[tuple[int, Any]]]  # (first row, dense rows × genes or CSR block)
    table: bool  # a CSV/TSV/Parquet table (one row per condition unless cell_level: true)
    shift: float = 0.0  # constant added by export_predictions, subtracted
    layers: tuple[str, ...] = ()


def _examples(items: Sequence[Any], k: int = 5) -> str:
    shown = ", ".join(repr(str(x)) for x in list(items)[:k])
    return shown + (f", … ({len(items)} in all)" if len(items) > k else "")


# --------------------------------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------------------------------


def _source(path: Path, condition_column: str | None, fail: Fail) -> _Source:
    suffix = path.suffix.lower()
    if suffix in _H5AD_SUFFIXES:
        return _h5ad_source(path, condition_column, fail)
    if suffix in _TABLE_SUFFIXES:
        return _table_source(path, _TABLE_SUFFIXES[suffix], condition_column, fail)
    fail(f"unknown file type {suffix!r}: write the predictions as .h5ad, .csv, .tsv or .parquet")


def _label_column(columns: Sequence[str], condition_column: str | None, where: str, fail: Fail) -> str | None:
    """The column holding the labels: the one the model names, else the first of :data:`LABEL_COLUMNS`."""
    if condition_column is not None:
        if condition_column not in columns:
            fail(f"condition_column is {condition_column!r}, but {where} has no such column (its columns: "
                 f"{_examples(columns, 12) or 'none'}): name one of them, or leave condition_column out")
        return condition_column
    return next((c for c in LABEL_COLUMNS if c in columns), None)


def _h5_strings(node: Any) -> np.ndarray:
    """An anndata string element (an index, a string column, a categorical) as an object array of str, read with
    h5py (importing anndata would cost a model's job more than reading its cells); missing values are ``""``."""
    import h5py

    encoding = node.attrs.get("encoding-type", "")
    encoding = encoding.decode() if isinstance(encoding, bytes) else str(encoding)
    if isinstance(node, h5py.Dataset):
        if h5py.check_string_dtype(node.dtype) is not None or node.dtype.kind in "SO":
            return np.asarray(node.asstr()[...], dtype=object)
        return node[...].astype(str).astype(object)  # numeric labels
    if encoding == "categorical":
        categories = _h5_strings(node["categories"])
        codes = node["codes"][...].astype(np.int64)
        return np.where(codes >= 0, categories[np.clip(codes, 0, None)], "")
    if encoding == "nullable-string-array":
        values = np.asarray(node["values"].asstr()[...], dtype=object)
        values[node["mask"][...].astype(bool)] = ""
        return values
    from anndata.io import read_elem  # any other encoding

    values = np.asarray(read_elem(node), dtype=object)
    return np.where([v is None or v != v for v in values], "", values.astype(str)).astype(object)


def _h5ad_source(path: Path, condition_column: str | None, fail: Fail) -> _Source:
    import h5py

    problem = None
    try:
        with h5py.File(path, "r") as f:
            layers = tuple(f["layers"].keys()) if "layers" in f else ()
            if "X" not in f:
                hint = (f"its data are in layers {_examples(layers)}: copy the predictions to X (adata.X = "
                        "adata.layers[name])" if layers else "write the predictions into X")
                problem = f"X is empty (the AnnData has no X matrix): {hint}"
            else:
                obs, var = f["obs"], f["var"]
                obs_columns = [str(c) for c in obs.attrs.get("column-order", [])]
                column = (condition_column if condition_column in obs_columns else None) if condition_column else next(
                    (c for c in LABEL_COLUMNS if c in obs_columns), None)
                labels = _h5_strings(obs[column] if column else obs[obs.attrs["_index"]])
                var_columns = [str(c) for c in var.attrs.get("column-order", [])]
                genes = _h5_strings(var["gene_name"] if "gene_name" in var_columns else var[var.attrs["_index"]])
                x = f["X"]
                shape = tuple(int(n) for n in (x.shape if isinstance(x, h5py.Dataset) else x.attrs["shape"]))
                shift = 0.0
                if "uns" in f and EXPORT_KEY in f["uns"] and "shift" in f["uns"][EXPORT_KEY]:
                    shift = float(f["uns"][EXPORT_KEY]["shift"][()])
    except (KeyError, TypeError, ValueError, OSError) as err:
        problem = f"not a readable h5ad file ({type(err).__name__}: {err}): write it again (anndata's write_h5ad)"
    if problem is not None:
        fail(problem)
    if condition_column is not None and column is None:
        _label_column(obs_columns, condition_column, "obs", fail)  # names the columns there are
    if shape != (len(labels), len(genes)):
        fail(f"X has shape {shape}, but obs has {len(labels)} rows and var {len(genes)} genes: write the file again")

    def chunks() -> Iterator[tuple[int, Any]]:
        from ..data.chunks import row_chunks

        rows = max(1, _CHUNK_VALUES // max(shape[1], 1))
        try:
            yield from row_chunks(path, shape[0], shape[1], rows)
        except (OSError, KeyError) as err:
            problem = f"X cannot be read ({type(err).__name__}: {err}): the file is damaged; write it again"
        else:
            return
        fail(problem)

    origin = f"obs[{column!r}]" if column else "obs names"
    return _Source(labels, origin, f"obs columns: {_examples(obs_columns, 12) or 'none'}", [str(g) for g in genes],
                   chunks, table=False, shift=shift, layers=layers)


def _table_source(path: Path, sep: str | None, condition_column: str | None, fail: Fail) -> _Source:
    import pandas as pd

    problem = None
    frame = None
    try:
        if sep is None:
            frame = pd.read_parquet(path)
        else:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                head = fh.readline()
            other = "\t" if sep == "," else ","
            header = next(csv.reader([head.lstrip("\ufeff")], delimiter=sep), [])
            if head.count(other) > head.count(sep):
                shape = "tab-separated" if other == "\t" else "comma-separated"
                problem = (f"looks {shape} although its name ends in {path.suffix}: rename it (.tsv for tabs, .csv "
                           "for commas)")
            elif repeated := [k for k, n in Counter(header).items() if n > 1]:  # pandas would rename them G, G.1
                problem = f"duplicate genes: {_examples(repeated)}: keep one column per gene"
            else:
                frame = pd.read_csv(path, sep=sep, encoding="utf-8-sig", float_precision="round_trip")
    except (OSError, ValueError, csv.Error, pd.errors.ParserError, UnicodeDecodeError) as err:
        problem = f"not a readable table ({type(err).__name__}: {err}): write it again"
    if problem is not None:
        fail(problem)
    if frame.shape[1] < 2 or frame.shape[0] < 1:
        fail(f"has {frame.shape[0]} rows and {frame.shape[1]} columns; expected one row per condition and one "
             "column per gene, the labels in the first column (or a 'condition' column)")
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    column = _label_column(columns, condition_column, "the table", fail) or columns[0]
    data = frame.drop(columns=[column])
    non_numeric = [c for c in data.columns if not pd.api.types.is_numeric_dtype(data[c])]
    if non_numeric:
        fail(f"gene columns that are not numbers: {_examples(non_numeric)}: the labels go in one column (name it "
             "with condition_column), every other column is a gene")
    values = data.to_numpy(dtype=np.float64)
    return _Source(frame[column].astype(str).to_numpy(dtype=object), f"column {column!r}",
                   f"columns: {_examples(columns, 12)}", list(data.columns), lambda: iter([(0, values)]), table=True)


# --------------------------------------------------------------------------------------------------
# Labels → conditions
# --------------------------------------------------------------------------------------------------


@dataclass
class _Labels:
    """The distinct labels of a file and what each names."""

    names: list[str]  # distinct labels, in order of first appearance
    codes: np.ndarray  # per row: index into names
    counts: np.ndarray  # rows per label
    condition: list[str | None]  # per label: the dataset condition it names, None if not one of the split's
    control: list[bool]  # per label: the model's own control


def _match_labels(source: _Source, split_conditions: Sequence[str], control_label: str | None, fail: Fail) -> _Labels:
    names_sorted, first, inverse = np.unique(source.labels, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # labels in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    codes = rank[inverse.ravel()].astype(np.int64)
    names = [str(n) for n in names_sorted[order]]
    if "" in names:
        fail(f"{source.label_origin} has no label on {int((codes == names.index('')).sum())} rows: label every row")
    by_key: dict[str, str] = {}
    for condition in split_conditions:
        by_key.setdefault(condition_key(condition), condition)
    controls = {c.lower() for c in CONTROL_LABELS}
    control = [name.lower() in controls or name == control_label for name in names]
    condition = [None if is_ctrl else by_key.get(condition_key(name)) for name, is_ctrl in zip(names, control)]
    seen: dict[str, str] = {}
    for name, target in zip(names, condition):
        if target is None:
            continue
        if target in seen:
            fail(f"the labels {seen[target]!r} and {name!r} of {source.label_origin} both name the condition "
                 f"{target!r} (a double is one condition whatever its gene order; 'G' and 'G+ctrl' are one): keep "
                 "one label per condition")
        seen[target] = name
    return _Labels(names, codes, np.bincount(codes, minlength=len(names)), condition, control)


# --------------------------------------------------------------------------------------------------
# Averaging rows per label
# --------------------------------------------------------------------------------------------------


@dataclass
class _Averaged:
    means: np.ndarray  # used labels × measured genes, float64
    first_whole: bool  # the first chunk's values are whole numbers
    first_max: float  # the first chunk's largest value
    min_value: float  # the smallest value read (counts: must not be negative)
    zero_totals: int  # counts: cells whose total is 0


def _average(
    source: _Source, target: np.ndarray, n_used: int, columns: np.ndarray, count_target: float | None
) -> _Averaged:
    """Mean of the rows of each used label (``target`` ≥ 0 per row) over the measured genes (``columns`` of the file).

    Rows are summed per label in float64, one vectorised sum per label and chunk: over each run of one label in
    place when the rows are grouped by label, over the label's rows gathered (after one argsort of the chunk's
    labels) when they are interleaved; that is ten times faster than :func:`numpy.add.reduceat` along rows and
    faster than a sparse indicator product (which needs the chunk in float64). Sparse chunks: one weighted
    :func:`numpy.bincount`. No loop over single rows unless rows are single-row conditions. With
    ``count_target`` each row is first normalised as a cell of counts: scaled to ``count_target`` over its total (all the file's genes), then ``log1p``. The checks of the
    values' scale look at the first rows only (a file of counts is counts throughout).
    """
    n_genes = len(columns)
    sums = np.zeros((n_used, n_genes))
    first_whole, first_max, min_value, zero_totals = True, -np.inf, np.inf, 0
    identity = columns.size and np.array_equal(columns, np.arange(len(source.genes)))
    position = np.full(len(source.genes), -1, dtype=np.int64)
    position[columns] = np.arange(n_genes)
    first = True
    for start, block in source.chunks():
        rows = target[start : start + block.shape[0]]
        keep = np.flatnonzero(rows >= 0)
        sparse = not isinstance(block, np.ndarray)  # a CSR block
        values = block.data if sparse else block
        if first and values.size:
            sample = values[: 1 << 20] if sparse else values[: max(1, (1 << 20) // max(values.shape[1], 1))]
            first_whole = bool(np.all(sample == np.floor(sample)))
            first_max = float(sample.max())
            first = False
        if count_target is not None and values.size:
            min_value = min(min_value, float(values.min()))
        if not keep.size:
            continue
        if sparse:
            sub = block[keep].tocsr()
            if count_target is not None:
                totals = np.asarray(sub.sum(axis=1), dtype=np.float64).ravel()
                zero_totals += int((totals <= 0).sum())
                scale = count_target / np.where(totals > 0, totals, np.nan)
                data = np.log1p(sub.data * np.repeat(scale, np.diff(sub.indptr)))
            else:
                data = sub.data.astype(np.float64)
            cols = position[sub.indices]
            row_label = np.repeat(rows[keep], np.diff(sub.indptr))
            ok = cols >= 0
            flat = row_label[ok] * n_genes + cols[ok]
            sums += np.bincount(flat, weights=data[ok], minlength=n_used * n_genes).reshape(n_used, n_genes)
            continue
        source_rows = block if identity else block[:, columns]  # rows × measured genes
        scale = None
        if count_target is not None:
            totals = block[keep].sum(axis=1, dtype=np.float64) if keep.size < block.shape[0] else block.sum(
                axis=1, dtype=np.float64)
            zero_totals += int((totals <= 0).sum())
            scale = np.full(block.shape[0], np.nan)
            scale[keep] = count_target / np.where(totals > 0, totals, np.nan)
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])  # runs of one label (or of ignored rows)
        if 4 * int((rows[starts] >= 0).sum()) <= keep.size:  # rows grouped by label: one slice per run, in place
            groups = ((label, slice(a, b)) for a, b, label in zip(starts, [*starts[1:], rows.size], rows[starts])
                      if label >= 0)
        else:  # rows interleaved: the rows of each label gathered (a small copy that stays in cache)
            order = keep[np.argsort(rows[keep], kind="stable")]
            ordered = rows[order]
            bounds = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
            groups = ((ordered[a], order[a:b]) for a, b in zip(bounds, [*bounds[1:], order.size]))
        for label, index in groups:
            part = source_rows[index]
            if scale is not None:
                part = np.log1p(part * scale[index, None])
            sums[label] += part.sum(axis=0, dtype=np.float64)
    counts = np.bincount(target[target >= 0], minlength=n_used).astype(np.float64)
    return _Averaged(sums / counts[:, None], first_whole, first_max, min_value, zero_totals)


# --------------------------------------------------------------------------------------------------
# The checks and the public reader
# --------------------------------------------------------------------------------------------------


def read_predictions(
    path: str | os.PathLike[str],
    *,
    quantity: str,
    genes: Sequence[str],
    ctrl_mean: np.ndarray,
    split: Mapping[str, Sequence[str]],
    model: str,
    dataset: str,
    seed: int,
    scale: str = "log",
    condition_column: str | None = None,
    control_label: str | None = None,
    cell_level: str | bool = "auto",
    count_target: float | None = None,
) -> ExternalPredictions:
    """Read, check and align one model's predictions for one (dataset, split seed).

    Parameters
    ----------
    path
        The file (see the module docstring for the forms).
    quantity
        ``expression`` (predicted mean expression; Δ̂ = prediction − ``ctrl_mean``) or ``delta``.
    genes, ctrl_mean
        The dataset's gene symbols (its pseudobulk's order) and control mean expression.
    split
        The split (``train``, ``val``, ``test`` condition lists).
    model, dataset, seed
        Named in every error.
    scale
        ``log`` (log-normalised values) or ``counts`` (counts per cell, normalised with ``count_target``).
    condition_column
        The obs column (h5ad) or column (table) holding the labels; default: see :data:`LABEL_COLUMNS`.
    control_label
        The label of the model's own control rows, besides :data:`CONTROL_LABELS`.
    cell_level
        ``auto`` (an h5ad with a repeated label holds cells; a table one row per condition), ``True`` (rows
        are averaged per label), ``False`` (one row per condition: a repeated label is an error).
    count_target
        ``scale: counts``: the dataset's median per-cell total of ``expm1(X)``.

    Raises
    ------
    ExternalModelError
        One line naming the model, the file, the dataset, the split seed, the problem and the fix: a missing,
        unreadable or empty file; a label column that does not exist; two labels for one condition; a repeated
        label where rows are conditions; NaN/inf; duplicate or missing genes; counts declared as log-normalised
        or the reverse; rows that behave as the other quantity; no test perturbation predicted.
    """
    where = f"model {model!r}, {path} (dataset {dataset}, split seed {seed})"

    def fail(problem: str) -> NoReturn:
        raise ExternalModelError(f"{where}: {' '.join(problem.split())}")

    if quantity not in QUANTITIES:
        fail(f"quantity must be one of {QUANTITIES}, got {quantity!r}: fix models.{model}.quantity")
    if scale not in SCALES:
        fail(f"scale must be one of {SCALES}, got {scale!r}: fix models.{model}.scale")
    if scale == "counts" and (quantity != "expression" or count_target is None):
        fail("scale: counts needs quantity: expression and the dataset's median per-cell total (count_target)")
    path = Path(path)
    if not path.is_file():
        fail(f"the file does not exist: write the model's predictions there, or fix models.{model}.path")
    notes: list[str] = []
    source = _source(path, condition_column, fail)
    notes.append(f"labels read from {source.label_origin} ({source.label_choices})")

    # genes
    gene_dupes = [k for k, n in Counter(source.genes).items() if n > 1]
    if gene_dupes:
        fail(f"duplicate genes: {_examples(gene_dupes)}: keep one column per gene")
    genes = [str(g) for g in genes]
    column_of = {g: i for i, g in enumerate(source.genes)}
    missing_genes = [g for g in genes if g not in column_of]
    if missing_genes:
        fail(f"{len(missing_genes)} of the dataset's {len(genes)} measured genes are not predicted, e.g. "
             f"{_examples(missing_genes)}: predict every gene of genes.csv in the exported split (genes are matched "
             "by symbol, var['gene_name'] or the var names)")
    extra = len(source.genes) - len(genes)
    if extra:
        measured = set(genes)
        notes.append(f"ignored {extra} genes the dataset does not measure, e.g. "
                     f"{_examples([g for g in source.genes if g not in measured])}")
    columns = np.asarray([column_of[g] for g in genes], dtype=np.int64)

    # labels
    split_conditions = [str(c) for part in ("train", "val", "test") for c in split.get(part, []) if c != CTRL]
    labels = _match_labels(source, split_conditions, control_label, fail)
    repeated = [(name, int(n)) for name, n in zip(labels.names, labels.counts) if n > 1]
    if cell_level is True or cell_level == "true":
        averaged = True
    elif cell_level is False or cell_level == "false":
        averaged = False
        if repeated:
            fail(f"cell_level: false, but {len(repeated)} labels of {source.label_origin} are on several rows, e.g. "
                 f"{repeated[0][0]!r} on {repeated[0][1]} rows: write one row per condition, or set cell_level: "
                 "true to average the rows of each label")
    else:
        averaged = bool(repeated) and not source.table
        if repeated and source.table:
            fail(f"duplicate conditions: {_examples([n for n, _ in repeated])} are on several rows of the table: "
                 "write one row per condition, or set cell_level: true to average the rows of each label")
    if averaged:
        notes.append(f"cell-level file: {len(source.labels)} rows averaged per label into {len(labels.names)} labels")
    n_control = int(sum(n for n, is_ctrl in zip(labels.counts, labels.control) if is_ctrl))
    if n_control:
        names = [name for name, is_ctrl in zip(labels.names, labels.control) if is_ctrl]
        notes.append(f"{n_control} control rows ({_examples(names)}): the model's own control, not evaluated")
    unknown = [n for n, c, k in zip(labels.names, labels.condition, labels.control) if c is None and not k]
    if unknown:
        notes.append(f"ignored {len(unknown)} labels that are not conditions of the dataset's split, e.g. "
                     f"{_examples(unknown)}")
    test = [str(c) for c in split["test"]]
    test_set = set(test)
    training = [n for n, c in zip(labels.names, labels.condition) if c is not None and c not in test_set]
    if training:
        notes.append(f"ignored predictions for {len(training)} training or validation conditions, e.g. "
                     f"{_examples(training)}")
    label_of = {c: i for i, c in enumerate(labels.condition) if c in test_set}
    predicted = [c for c in test if c in label_of]
    if not predicted:
        fail(f"no test perturbation of the split is predicted: the labels in {source.label_origin} are "
             f"{_examples(labels.names)}; the test perturbations are {_examples(test)} (written 'G+ctrl' or 'G'): "
             f"if the labels are elsewhere, name their column with condition_column ({source.label_choices})")

    # values
    slot = np.full(len(labels.names), -1, dtype=np.int64)
    slot[[label_of[c] for c in predicted]] = np.arange(len(predicted))
    own_control = bool(source.shift) and quantity == "expression" and any(labels.control)
    if own_control:  # an exported file: its control row too, to take changes from it (below)
        slot[np.flatnonzero(labels.control)] = len(predicted)
    result = _average(source, slot[labels.codes], len(predicted) + own_control, columns,
                      count_target if scale == "counts" else None)
    rows = result.means[: len(predicted)]
    if scale == "log" and result.first_whole and result.first_max > LOG_MAX:
        fail(f"the values are whole numbers up to {result.first_max:.0f}, far above log-normalised expression: "
             "these look like counts; set scale: counts (each cell is then normalised as the dataset's cells were)")
    if scale == "counts":
        if result.min_value < 0:
            fail(f"scale: counts, but there are negative values (down to {result.min_value:.3g}): counts are never "
                 "negative; set scale: log if the values are log-normalised expression")
        if not result.first_whole and result.first_max <= LOG_MAX:
            fail(f"scale: counts, but the values are fractional and at most {result.first_max:.3g}: these look "
                 "log-normalised; set scale: log")
        if result.zero_totals:
            fail(f"scale: counts, but {result.zero_totals} predicted cells have no counts at all: they cannot be "
                 "normalised; drop them or predict their counts")
        notes.append(f"scale counts: each cell scaled to {count_target:.6g} (the dataset's median per-cell total of "
                     "expm1(X)) over its own total, then log1p, then averaged")
    bad = ~np.isfinite(rows).all(axis=1)
    if bad.any():
        fail(f"NaN or infinite values in {int(bad.sum())} conditions, e.g. "
             f"{_examples([predicted[i] for i in np.flatnonzero(bad)])}: every gene of every predicted condition "
             "needs a number")
    if not rows.any():
        if source.layers:
            fail(f"X is all zeros in the predicted rows while the file has layers {_examples(source.layers)}: copy "
                 "the layer with the predictions to X (adata.X = adata.layers[name]) and write the file again")
        if quantity == "expression":
            fail("every predicted value is 0: there is no predicted expression; write the predictions into X")
        notes.append("every predicted change is 0 (a model that predicts no change)")
    ctrl = np.asarray(ctrl_mean, dtype=np.float64)
    if source.shift:
        shifted = rows
        rows = rows - source.shift
        notes.append(f"subtracted the constant {source.shift:g} that export_predictions added to every value "
                     f"(uns[{EXPORT_KEY!r}]['shift'])")
    if own_control:
        # its control row is the dataset's control mean + the shift: changes taken from it are the exported ones
        # without the rounding of the shift (a 'no change' row gives exactly 0, as the method predicted)
        control_row = result.means[-1]
        if np.abs(control_row - source.shift - ctrl).max() > 1e-9:
            fail(f"the file carries export_predictions' shift, but its control row is not the dataset's control mean "
                 f"+ {source.shift:g}: it was exported from other data; export it again from this run")
    _check_quantity(rows, ctrl, quantity, fail)
    if quantity == "expression":
        negative = float((rows < 0).mean())
        if negative:
            notes.append(f"{100 * negative:.2f} % of the predicted expression values are negative (as a linear "
                         "model's control mean + change is on low genes); scored as they are")
    if own_control:
        delta = (shifted - control_row[None, :]).T
    else:
        delta = (rows - ctrl[None, :] if quantity == "expression" else rows).T
    missing = [c for c in test if c not in label_of]
    if missing:
        notes.append(f"predicts {len(predicted)} of the {len(test)} test perturbations; not predicted: "
                     f"{_examples(missing)}")
    return ExternalPredictions(predicted, np.ascontiguousarray(delta), missing, notes)


def follows_control(rows: np.ndarray, ctrl: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row with the control mean over genes (NaN for a constant row)."""
    centred = rows - rows.mean(axis=1, keepdims=True)
    c = ctrl - ctrl.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (centred @ c) / (np.linalg.norm(centred, axis=1) * np.linalg.norm(c))


def _check_quantity(rows: np.ndarray, ctrl: np.ndarray, quantity: str, fail: Fail) -> None:
    """Rows that behave as the other quantity are an error (SPEC 7.3).

    Mean expression is dominated by each gene's level, so every expression row correlates with the control
    mean over genes (r ≈ 0.97 for real and synthetic perturbations); changes from it do not (median r ≈ 0).
    The median over rows of that correlation decides; constant rows (a model predicting no change) say nothing.
    """
    r = follows_control(rows, ctrl)
    r = r[np.isfinite(r)]
    if not r.size:
        return
    median = float(np.median(r))
    if quantity == "expression" and median < FOLLOWS_CONTROL:
        fail(f"declared quantity: expression, but the rows do not follow the control mean (median correlation "
             f"with it over genes {median:.2f}; expression rows have about 0.9 or more): these look like changes "
             "from the control mean; set quantity: delta")
    if quantity == "delta" and median >= FOLLOWS_CONTROL:
        fail(f"declared quantity: delta, but the rows follow the control mean (median correlation with it over "
             f"genes {median:.2f}; changes have about 0): these look like mean expression; set quantity: "
             "expression")
