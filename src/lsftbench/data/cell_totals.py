"""The dataset's per-cell totals of ``expm1(X)``: what its cells were normalised to (SPEC 7.3, ``scale: counts``).

A log-normalised dataset is ``log1p(counts · t / total)`` per cell, for a target ``t`` (``normalize_total``'s
``target_sum``, or the median total of the raw counts). ``expm1(X)`` summed over a cell's genes gives back its
``t`` (every cell the same ``t`` when the genes were not filtered after normalisation; a spread around it when
they were). The median over the dataset's cells is the target a model's predicted counts are normalised to, so
that they are on the dataset's scale (:mod:`lsftbench.model.external`).

Streamed over row chunks of ``X`` (:func:`lsftbench.data.chunks.row_chunks`): memory independent of the
number of cells. Only the ``evaluate_model`` jobs of models with ``scale: counts`` need it (rule
``cell_totals``), so the default run never computes it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..io import InputDataError, read_json, write_json

__all__ = ["cell_totals", "write_cell_totals", "read_count_target"]

#: Values per row chunk (float32: 64 MB).
_CHUNK_VALUES = 1 << 24


def cell_totals(path: str | os.PathLike[str]) -> np.ndarray:
    """Per-cell sum over genes of ``expm1(X)`` (float64), for every cell of a GEARS h5ad.

    Raises
    ------
    InputDataError
        When ``X`` is missing or no cell has a positive total.
    """
    import h5py
    import scipy.sparse as sp

    from .chunks import row_chunks

    try:
        with h5py.File(path, "r") as f:
            x = f["X"]
            shape = tuple(int(n) for n in (x.shape if isinstance(x, h5py.Dataset) else x.attrs["shape"]))
    except (OSError, KeyError) as err:
        raise InputDataError(path, f"X cannot be read ({type(err).__name__}: {err})") from None
    totals = np.zeros(shape[0])
    for start, block in row_chunks(path, shape[0], shape[1], max(1, _CHUNK_VALUES // max(shape[1], 1))):
        if sp.issparse(block):
            rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
            totals[start : start + block.shape[0]] = np.bincount(
                rows, weights=np.expm1(block.data.astype(np.float64)), minlength=block.shape[0]
            )
        else:
            totals[start : start + block.shape[0]] = np.expm1(block.astype(np.float64)).sum(axis=1)
    if not (totals > 0).any():
        raise InputDataError(path, "no cell has any expression (X is all zeros): there is nothing to normalise to")
    return totals


def write_cell_totals(data: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the median and spread of :func:`cell_totals` as JSON (rule ``cell_totals``); returns what was written."""
    totals = cell_totals(data)
    summary = {
        "median_total": float(np.median(totals)),
        "n_cells": int(totals.size),
        "quantiles": {f"{q:g}": float(v) for q, v in zip((0.0, 0.05, 0.5, 0.95, 1.0),
                                                         np.quantile(totals, (0.0, 0.05, 0.5, 0.95, 1.0)))},
        "what": "per-cell sum over genes of expm1(X); predicted counts of scale: counts models are scaled to "
                "median_total over each cell's own total, then log1p (SPEC 7.3)",
    }
    write_json(summary, out)
    return summary


def read_count_target(path: str | os.PathLike[str]) -> float:
    """The ``median_total`` of a :func:`write_cell_totals` file."""
    return float(read_json(path)["median_total"])
