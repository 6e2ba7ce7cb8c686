"""The predictions of the progress bar's null methods (SPEC 7, seed 003), as the other methods' predictions are.

:mod:`lsftbench.evaluation.progress_bar` scores three null methods on one split's test set: ``train mean``
(the mean Δ of all training perturbations, ``ctrl`` excluded), ``no change`` (Δ̂ = 0) and ``random
perturbation embedding`` (the ridge model with the training-PCA gene embedding and seeded N(0, 1)
perturbation embedding: baseline ``lpm_randomPertEmb`` for the same seed). :func:`null_predictions`
returns what they predict (Δ̂, genes × test perturbations, float64) so that they can be written out
(``snakemake export_predictions``, :mod:`lsftbench.report.export`) and scored by other tools; the progress
bar's numbers are the metrics of exactly these arrays.

This module imports nothing from :mod:`lsftbench.evaluation.progress_bar`, so the progress bar can take its
predictions from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..data.conditions import CTRL
from ..data.mean_expression import MeanExpression, training_mean_delta
from ..embeddings.build import build_embedding
from ..labels import Labels
from ..model.global_fit import global_predictions
from ..model.problem import make_problem

if TYPE_CHECKING:
    import anndata as ad

__all__ = ["TRAIN_MEAN", "NO_CHANGE", "RANDOM_PERT", "NULL_METHODS", "NullPredictions", "null_predictions"]

TRAIN_MEAN = "train mean"
NO_CHANGE = "no change"
RANDOM_PERT = "random perturbation embedding"
#: The null methods, in the order of the progress bar.
NULL_METHODS = (TRAIN_MEAN, NO_CHANGE, RANDOM_PERT)


@dataclass(frozen=True)
class NullPredictions:
    """One null method's predicted changes on one split's test set."""

    method: str
    conditions: list[str]  # the test perturbations it predicts, in the split's order
    delta: np.ndarray  # genes (the pseudobulk's, all measured) × conditions, float64


def _mean_expression(pb: ad.AnnData | MeanExpression) -> MeanExpression:
    if isinstance(pb, MeanExpression):
        return pb
    return MeanExpression(np.asarray(pb.X, dtype=np.float64), Labels(pb.obs_names), Labels(pb.var_names))


def null_predictions(
    pb: ad.AnnData | MeanExpression,
    split: Mapping[str, Sequence[str]],
    *,
    dim: int = 10,
    ridge: float = 0.1,
    random_seed: int = 1,
    top_n: int = 1000,
) -> dict[str, NullPredictions]:
    """Δ̂ of every null method on the test perturbations of ``split`` that have cells in ``pb``.

    Parameters
    ----------
    pb
        Mean expression per condition (a pseudobulk h5ad's, read back, or its AnnData), with the ``ctrl`` row.
    split
        One protocol's and split seed's ``train``, ``val`` and ``test`` lists.
    dim, ridge, random_seed, top_n
        The settings :func:`lsftbench.evaluation.progress_bar.method_scores` is called with (``pca_dim``,
        ``ridge_penalty``, the seed of ``lpm_randomPertEmb`` for this split seed, ``metrics.top_genes``).

    Returns
    -------
    dict
        :data:`NULL_METHODS` → :class:`NullPredictions`, over every measured gene; the random embedding predicts
        the test perturbations whose target gene is measured.
    """
    mean = _mean_expression(pb)
    measured = set(mean.obs_names)
    test = [c for c in split["test"] if c in measured and c != CTRL]
    split = {k: list(v) for k, v in split.items()}
    m = training_mean_delta(mean, split)
    out = {
        TRAIN_MEAN: NullPredictions(TRAIN_MEAN, test, np.repeat(m[:, None], len(test), axis=1)),
        NO_CHANGE: NullPredictions(NO_CHANGE, test, np.zeros((len(mean.var_names), len(test)))),
    }
    spec = {"model": "ridge", "gene": {"type": "training_pca"}, "pert": {"type": "random", "seed": random_seed}}
    embedding = build_embedding(spec, mean, split, dim, dataset="progress_bar")
    problem = make_problem(mean, {**split, "test": test}, embedding, top_n)
    if list(problem.genes) != list(mean.var_names):
        raise AssertionError("the random perturbation embedding must cover every measured gene")
    out[RANDOM_PERT] = NullPredictions(RANDOM_PERT, list(problem.test), global_predictions(problem, ridge))
    return out
