"""Global fit of a baseline on all training conditions (SPEC section 5)."""

from __future__ import annotations

import numpy as np

from .problem import Problem
from .ridge import predict, solve_y_axb

__all__ = ["global_predictions", "training_center"]


def training_center(problem: Problem) -> np.ndarray:
    """Row means of ``Y`` over all training conditions (``ctrl`` included): the global centre."""
    return problem.y[:, problem.col(problem.train)].mean(axis=1)


def global_predictions(problem: Problem, ridge: float) -> np.ndarray:
    """Predicted Δ for the predictable test conditions (genes × tests).

    Ridge baselines fit ``Y_train ≈ A K B_train`` with the row-mean centre; ``mean_response``
    predicts the mean Δ of all training perturbations (``ctrl`` excluded, :attr:`Problem.train_mean`;
    load its problem with ``every_condition=True`` so that every test perturbation is predicted, SPEC 5);
    ``additive`` predicts Δ_A + Δ_B of the observed training singles of each test double (SPEC 10,
    :attr:`Problem.additive`). A double's column of ``B`` is ``b_A + b_B`` (SPEC 10), in training as in test.
    """
    emb = problem.embedding
    if emb.model == "mean":
        return np.repeat(problem.train_mean[:, None], len(problem.test), axis=1)
    if emb.model == "additive":
        return problem.additive_for(problem.test)
    k, center = solve_y_axb(problem.y[:, problem.col(problem.train)], emb.A, problem.b(problem.train), ridge)
    return predict(emb.A, k, problem.b(problem.test), center)
