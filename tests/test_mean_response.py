"""``mean_response`` (SPEC 5): the mean Δ of *all* training perturbations, whether or not embedded."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from lsftbench.embeddings.build import Embedding
from lsftbench.model.global_fit import global_predictions
from lsftbench.model.problem import make_problem


def _data() -> tuple[ad.AnnData, dict[str, list[str]], Embedding]:
    """Three genes; train A, B, C (C has no pert embedding), test D, E (E has none)."""
    conditions = ["ctrl", "A+ctrl", "B+ctrl", "C+ctrl", "D+ctrl", "E+ctrl"]
    x = np.array(
        [[1.0, 2.0, 3.0], [2.0, 2.0, 3.0], [1.0, 4.0, 3.0], [1.0, 2.0, 9.0], [5.0, 5.0, 5.0], [0.0, 0.0, 0.0]]
    )
    pb = ad.AnnData(x, obs=pd.DataFrame(index=conditions), var=pd.DataFrame(index=["g1", "g2", "g3"]))
    split = {"train": ["ctrl", "A+ctrl", "B+ctrl", "C+ctrl"], "val": [], "test": ["D+ctrl", "E+ctrl"]}
    embedded = pd.Index(["ctrl", "A+ctrl", "B+ctrl", "D+ctrl"])
    emb = Embedding(
        genes=pd.Index(["g1", "g2", "g3"]),
        A=np.zeros((3, 0)),
        conditions=embedded,
        B=np.arange(2 * len(embedded), dtype=float).reshape(2, -1),
        gene_type="none",
        pert_type="training_pca",
        model="mean",
    )
    return pb, split, emb


def test_mean_response_averages_every_training_perturbation_and_predicts_every_test():
    pb, split, emb = _data()
    problem = make_problem(pb, split, emb, every_condition=True)
    # Δ of A, B, C: (1,0,0), (0,2,0), (0,0,6) -> mean (1/3, 2/3, 2); ctrl excluded, C included.
    expected = np.array([1 / 3, 2 / 3, 2.0])
    np.testing.assert_allclose(problem.train_mean, expected)
    assert problem.test == ["D+ctrl", "E+ctrl"] and problem.test_not_predictable == []
    np.testing.assert_allclose(global_predictions(problem, 0.1), np.column_stack([expected, expected]))


def test_lsft_problem_keeps_embedded_conditions_but_the_same_training_mean():
    """LSFT neighbours come from the pert embedding; the centred-r reference m stays over all train perts."""
    pb, split, emb = _data()
    problem = make_problem(pb, split, emb)
    assert problem.train_perts == ["A+ctrl", "B+ctrl"] and problem.test == ["D+ctrl"]
    assert problem.test_not_predictable == ["E+ctrl"]
    np.testing.assert_allclose(problem.train_mean, [1 / 3, 2 / 3, 2.0])


def test_every_condition_applies_to_the_mean_model_only():
    """A ridge baseline still predicts only the test conditions it has an embedding for."""
    from dataclasses import replace

    pb, split, emb = _data()
    ridge = replace(emb, model="ridge", A=np.ones((3, 2)))
    problem = make_problem(pb, split, ridge, every_condition=True)
    assert problem.test == ["D+ctrl"] and problem.test_not_predictable == ["E+ctrl"]
