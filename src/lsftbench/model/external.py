"""Predictions of a model of one's own, read and checked (SPEC 7.3; config ``models:``).

A model is a file per dataset and split seed of predicted mean expression (``quantity: expression``)
or predicted change from the control mean (``quantity: delta``) per condition. Accepted files:

* AnnData ``.h5ad`` with one row per condition (obs names, or an ``obs["condition"]`` column);
* cell-level AnnData (several rows per condition, as cell-eval and STATE write them), averaged per condition;
* CSV / TSV / Parquet, wide: one row per condition (the first column or a ``condition`` column names
  it), one column per gene.

Condition names in GEARS form (``G+ctrl``) and bare (``G``) are both matched against the dataset's;
genes by symbol against the dataset's ``var["gene_name"]`` (an AnnData's ``var_names`` or its
``gene_name`` column). Genes the dataset does not measure are ignored (logged); predictions for
training or validation conditions are ignored (logged); a test perturbation the file lacks is not
predicted by the model (its coverage is reported and the common test set shrinks). Everything else
that could make the numbers wrong is an :class:`ExternalModelError` naming the model, the file, the
dataset, the split seed and the problem.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.conditions import CTRL, clean_condition

__all__ = ["QUANTITIES", "ExternalModelError", "ExternalPredictions", "read_predictions", "prediction_table"]

log = logging.getLogger(__name__)

QUANTITIES = ("expression", "delta")
_TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".parquet": None, ".pq": None}
_H5AD_SUFFIXES = (".h5ad",)


class ExternalModelError(ValueError):
    """A model's predictions cannot be evaluated; the message names the model, file, dataset, seed and problem."""


@dataclass
class ExternalPredictions:
    """A model's predicted changes Δ̂ for the test perturbations it predicts, aligned on the dataset's genes."""

    conditions: list[str]  # test perturbations predicted, in the split's order
    delta: np.ndarray  # genes × conditions, float64
    missing: list[str]  # test perturbations of the split the file lacks
    notes: list[str] = field(default_factory=list)  # what was ignored, for the log


@dataclass
class _Raw:
    """A file's rows as read: labels (one per row), genes and values (rows × genes)."""

    labels: list[str]
    genes: list[str]
    values: np.ndarray
    cell_level: bool = False


def _examples(items: Sequence[Any], k: int = 5) -> str:
    shown = ", ".join(repr(str(x)) for x in list(items)[:k])
    return shown + (f", … ({len(items)} in all)" if len(items) > k else "")


def prediction_table(
    path: str | os.PathLike[str], fail: Any = None
) -> tuple[list[str], list[str], np.ndarray, bool]:
    """Read a predictions file: (row labels, gene names, rows × genes float64 values, cell-level).

    A cell-level AnnData (a label on several rows) is averaged per label here; labels come in order of
    first appearance. ``fail(problem)`` raises the caller's error (default ``ValueError``).
    """
    fail = fail or (lambda problem: (_ for _ in ()).throw(ValueError(f"{path}: {problem}")))
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _H5AD_SUFFIXES:
        raw = _read_h5ad(path, fail)
    elif suffix in _TABLE_SUFFIXES:
        raw = _read_table(path, _TABLE_SUFFIXES[suffix], fail)
    else:
        fail(f"unknown file type {suffix!r}: write .h5ad, .csv, .tsv or .parquet")
    if raw.cell_level:
        labels, inverse = np.unique(np.asarray(raw.labels, dtype=object), return_inverse=True)
        first = {}
        for i, label in enumerate(raw.labels):
            first.setdefault(label, i)
        order = np.argsort([first[str(lab)] for lab in labels], kind="stable")
        sums = np.zeros((len(labels), raw.values.shape[1]))
        np.add.at(sums, inverse, raw.values)
        counts = np.bincount(inverse, minlength=len(labels))
        means = sums / counts[:, None]
        return [str(labels[i]) for i in order], raw.genes, means[order], True
    return raw.labels, raw.genes, raw.values, False


def _read_h5ad(path: Path, fail: Any) -> _Raw:
    import anndata as ad
    import scipy.sparse as sp

    try:
        adata = ad.read_h5ad(path)
    except Exception as err:  # noqa: BLE001 - any reader failure is "unreadable" for the user
        fail(f"not a readable h5ad file ({type(err).__name__}: {err})")
    if adata.X is None:
        fail("X is empty (the predictions must be in X)")
    if "condition" in adata.obs.columns:
        labels = adata.obs["condition"].astype(str).tolist()
    else:
        labels = [str(x) for x in adata.obs_names]
    if "gene_name" in adata.var.columns:
        genes = adata.var["gene_name"].astype(str).tolist()
    else:
        genes = [str(x) for x in adata.var_names]
    x = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    try:
        values = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        fail(f"X is not numeric ({err})")
    return _Raw(labels, genes, values, cell_level=len(set(labels)) < len(labels))


def _read_table(path: Path, sep: str | None, fail: Any) -> _Raw:
    import pandas as pd

    try:
        if sep is None:
            frame = pd.read_parquet(path)
        else:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                head = fh.readline()
            other = "\t" if sep == "," else ","
            if head.count(other) > head.count(sep):
                shape = "tab-separated" if other == "\t" else "comma-separated"
                fail(f"looks {shape} although its name ends in {path.suffix}: rename it (.tsv for tabs, .csv for commas)")
            header = next(csv.reader([head.lstrip("\ufeff")], delimiter=sep))
            repeated = [k for k, n in Counter(header).items() if n > 1]
            if repeated:  # pandas would rename them (G, G.1): caught here
                fail(f"duplicate genes: {_examples(repeated)}")
            frame = pd.read_csv(path, sep=sep, encoding="utf-8-sig", float_precision="round_trip")
    except (OSError, ValueError, csv.Error, pd.errors.ParserError) as err:
        if isinstance(err, ValueError) and str(err).startswith(str(path)):
            raise
        fail(f"not a readable table ({type(err).__name__}: {err})")
    if frame.shape[1] < 2 or frame.shape[0] < 1:
        fail(f"has {frame.shape[0]} rows and {frame.shape[1]} columns; expected one row per condition and one "
             "column per gene, the conditions in the first column (or a 'condition' column)")
    label_col = "condition" if "condition" in frame.columns else frame.columns[0]
    labels = frame[label_col].astype(str).tolist()
    data = frame.drop(columns=[label_col])
    non_numeric = [c for c in data.columns if not pd.api.types.is_numeric_dtype(data[c])]
    if non_numeric:
        fail(f"gene columns that are not numbers: {_examples(non_numeric)}")
    return _Raw(labels, [str(c) for c in data.columns], data.to_numpy(dtype=np.float64))  # one row per condition


def _condition_map(labels: Sequence[str], conditions: Sequence[str]) -> dict[str, str]:
    """Each file label → the dataset's condition: exact, or matched by its clean name (``G`` ~ ``G+ctrl``)."""
    by_clean: dict[str, str] = {}
    for condition in conditions:
        by_clean.setdefault(clean_condition(condition), condition)
    known = set(conditions)
    out = {}
    for label in labels:
        if label in known:
            out[label] = label
        elif clean_condition(label) in by_clean:
            out[label] = by_clean[clean_condition(label)]
    return out


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
) -> ExternalPredictions:
    """Read, check and align one model's predictions for one (dataset, split seed).

    Parameters
    ----------
    path
        The file (see the module docstring for the formats).
    quantity
        ``expression`` (predicted mean expression; Δ̂ = prediction − ``ctrl_mean``) or ``delta``.
    genes, ctrl_mean
        The dataset's gene symbols (its pseudobulk's order) and control mean expression.
    split
        The split (``train``, ``val``, ``test`` condition lists).
    model, dataset, seed
        Named in every error.

    Raises
    ------
    ExternalModelError
        Missing or unreadable file, NaN/inf, duplicate conditions or genes, measured genes the model does
        not predict, values that look like the other quantity, no test perturbation predicted.
    """
    where = f"model {model!r}, {path} (dataset {dataset}, split seed {seed})"

    def fail(problem: str) -> None:
        raise ExternalModelError(f"{where}: {problem}")

    if quantity not in QUANTITIES:
        fail(f"quantity must be one of {QUANTITIES}, got {quantity!r}")
    if not Path(path).is_file():
        fail("the file does not exist (write the model's predictions there, or fix models.<name>.path)")
    notes: list[str] = []
    labels, file_genes, values, cell_level = prediction_table(path, fail)
    if cell_level:
        notes.append(f"cell-level file: {values.shape[0]} conditions after averaging the cells of each")
    else:
        dupes = [k for k, n in Counter(labels).items() if n > 1]
        if dupes:
            fail(f"duplicate conditions: {_examples(dupes)}")
    gene_dupes = [k for k, n in Counter(file_genes).items() if n > 1]
    if gene_dupes:
        fail(f"duplicate genes: {_examples(gene_dupes)}")
    if not np.isfinite(values).all():
        bad_rows = np.flatnonzero(~np.isfinite(values).all(axis=1))
        fail(f"NaN or infinite values in {len(bad_rows)} conditions, e.g. {_examples([labels[i] for i in bad_rows])}")
    genes = [str(g) for g in genes]
    column = {g: i for i, g in enumerate(file_genes)}
    missing_genes = [g for g in genes if g not in column]
    if missing_genes:
        fail(f"{len(missing_genes)} of the dataset's {len(genes)} measured genes are not predicted, e.g. "
             f"{_examples(missing_genes)} (genes are matched by symbol, var['gene_name'])")
    measured = set(genes)
    extra = [g for g in file_genes if g not in measured]
    if extra:
        notes.append(f"ignored {len(extra)} genes the dataset does not measure, e.g. {_examples(extra)}")
    values = values[:, [column[g] for g in genes]]
    all_conditions = [c for part in ("train", "val", "test") for c in split.get(part, [])]
    mapping = _condition_map(labels, [*all_conditions, CTRL])
    unknown = [lab for lab in labels if lab not in mapping]
    if unknown:
        notes.append(f"ignored {len(unknown)} conditions that are not conditions of the dataset's split, e.g. "
                     f"{_examples(unknown)}")
    test = list(split["test"])
    test_set = set(test)
    training = [lab for lab in labels if lab in mapping and mapping[lab] not in test_set]
    if training:
        notes.append(f"ignored predictions for {len(training)} training or validation conditions, e.g. {_examples(training)}")
    row_of = {mapping[lab]: i for i, lab in enumerate(labels) if lab in mapping and mapping[lab] in test_set}
    predicted = [c for c in test if c in row_of]
    if not predicted:
        fail(f"no test perturbation of the split is predicted: its rows are {_examples(labels)}, the test "
             f"perturbations {_examples(test)}")
    rows = values[[row_of[c] for c in predicted]]
    ctrl = np.asarray(ctrl_mean, dtype=np.float64)
    _check_quantity(rows, ctrl, quantity, fail)
    delta = (rows - ctrl[None, :] if quantity == "expression" else rows).T
    missing = [c for c in test if c not in row_of]
    if missing:
        notes.append(f"predicts {len(predicted)} of the {len(test)} test perturbations; not predicted: {_examples(missing)}")
    return ExternalPredictions(predicted, np.ascontiguousarray(delta), missing, notes)


def _check_quantity(rows: np.ndarray, ctrl: np.ndarray, quantity: str, fail: Any) -> None:
    """Values that look like the other quantity are an error (SPEC 7.3).

    Log-normalised expression is never negative; changes from the control mean are centred on 0 and
    take both signs. ``expression`` with more than 1 % negative values, or ``delta`` with less than 1 %
    negative values and a mean near the control mean's, is the other quantity.
    """
    negative = float((rows < 0).mean())
    if quantity == "expression" and negative > 0.01:
        fail(f"declared quantity: expression, but {100 * negative:.0f} % of the values are negative and they are "
             f"centred on {np.mean(rows):.3g}: these look like changes from the control mean; set quantity: delta")
    if quantity == "delta" and negative < 0.01 and np.mean(rows) > 0.5 * max(float(np.mean(ctrl)), 1e-12):
        fail(f"declared quantity: delta, but {100 * negative:.1f} % of the values are negative and their mean ({np.mean(rows):.3g}) is that of "
             f"expression (the control mean's is {np.mean(ctrl):.3g}): set quantity: expression")
