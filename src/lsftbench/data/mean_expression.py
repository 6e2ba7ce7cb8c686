"""The pseudobulk as the fits read it back (SPEC 3): conditions × genes means and their names.

Everything here needs only NumPy and h5py: the training-PCA, embedding, fit and LSFT jobs read the
pseudobulk through :func:`read_mean_expression` without importing anndata, pandas or SciPy
(importing them would cost more than such a job's work). An AnnData pseudobulk (from
:func:`lsftbench.data.pseudobulk.pseudobulk`) is accepted wherever a :class:`MeanExpression` is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import h5py
import numpy as np

from ..io import X_CHECKSUM, DamagedFileError, InputDataError, array_crc32
from ..labels import Labels

if TYPE_CHECKING:
    import anndata as ad

__all__ = ["MeanExpression", "read_mean_expression", "require_conditions", "top_expressed", "training_mean_delta"]

@dataclass(frozen=True)
class MeanExpression:
    """The parts of a pseudobulk AnnData that fits need: conditions × genes means and their names."""

    X: np.ndarray
    obs_names: Labels
    var_names: Labels


def read_mean_expression(path: str | os.PathLike[str]) -> MeanExpression:
    """Read ``X`` and the obs/var names of a pseudobulk h5ad written by :func:`lsftbench.data.pseudobulk.pseudobulk`.

    Uses h5py on anndata's on-disk layout (dense ``X``, ``obs``/``var`` groups whose ``_index``
    attribute names the index dataset) rather than ``anndata.read_h5ad``: the fit and LSFT jobs are
    short, and importing anndata would be a sizeable part of each one.
    """
    try:
        with h5py.File(path, "r") as f:
            names = [Labels(f[g][f[g].attrs["_index"]].asstr()[...].tolist(), name=g) for g in ("obs", "var")]
            x = f["X"][...]
            expected = f.attrs.get(X_CHECKSUM)
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise DamagedFileError.from_error(path, err) from None
    if expected is not None and array_crc32(x) != str(expected):
        raise DamagedFileError(path, "the checksum of X does not match the one written with it")
    return MeanExpression(X=np.asarray(x, dtype=np.float64), obs_names=names[0], var_names=names[1])


def require_conditions(pb: ad.AnnData | MeanExpression, conditions: list[str], path: str | os.PathLike[str]) -> None:
    """Every condition of a split must have cells in the pseudobulk."""
    missing = [c for c in conditions if c not in pb.obs_names]
    if missing:
        raise InputDataError(
            path, f"{len(missing)} split conditions have zero cells in the data (e.g. {', '.join(missing[:5])})"
        )


def top_expressed(ctrl_mean: np.ndarray, n: int = 1000) -> np.ndarray:
    """Indices of the ``n`` genes with the highest control mean (stable for ties)."""
    order = np.argsort(-np.asarray(ctrl_mean), kind="stable")
    return np.sort(order[: min(n, len(order))])


def training_mean_delta(pb: ad.AnnData | MeanExpression, split: dict[str, list[str]]) -> np.ndarray:
    """``m``: the mean Δ (genes) of all training perturbations of ``split`` (``ctrl`` excluded), SPEC 5 and 7.

    ``mean_response``'s prediction, the ``train mean`` null method and the centre of the centred Pearson r;
    computed one way everywhere (one matrix-vector product over the rows, minus the control mean), so a
    model predicting it is ``mean_response`` to the last bit. ``ValueError`` when the split trains on no
    perturbation.
    """
    train = [c for c in split["train"] if c != "ctrl"]
    if not train:
        raise ValueError("the split has no training perturbation besides ctrl")
    x = np.asarray(pb.X, dtype=np.float64)
    rows = pb.obs_names.get_indexer(train)
    weights = np.zeros(x.shape[0])
    weights[rows] = 1.0 / len(rows)  # split conditions are unique
    mean = weights @ x
    mean -= x[pb.obs_names.get_loc("ctrl")]
    return mean
