"""Branches of the LSFT fast path that the default data do not reach, checked against the loop."""

import dataclasses

import numpy as np
import pytest

import lsftbench.lsft as lsft_module
from lsftbench.embeddings import build_embedding
from lsftbench.lsft import lsft, lsft_reference
from lsftbench.problem import make_problem

SELFTRAINED = {"gene": {"type": "training_pca"}, "pert": {"type": "training_pca"}}


def _assert_same(fast, ref):
    assert fast.neighbours == ref.neighbours
    assert np.abs(fast.local - ref.local).max() <= 1e-10 * np.abs(ref.local).max()
    np.testing.assert_allclose(fast.knn, ref.knn, rtol=0, atol=1e-12)


@pytest.mark.parametrize("center", ["local", "global"])
def test_svd_fallback_equals_loop(small_pb, small_split, monkeypatch, center):
    """With a zero tolerance every local PCA takes the SVD fallback instead of the Gram eigenproblem."""
    p = make_problem(small_pb, small_split, build_embedding(SELFTRAINED, small_pb, small_split, 5, dataset="d"))
    monkeypatch.setattr(lsft_module, "_GRAM_TOL", 0.0)
    _assert_same(lsft(p, 50, 0.1, center=center), lsft_reference(p, 50, 0.1, center=center))


@pytest.mark.parametrize("pct", [10, 50])
def test_different_gene_and_pert_dimensions(small_pb, small_split, pct):
    """Both sides refit with d_A ≠ d_B: nested ordered components (the SVD path)."""
    emb = build_embedding(SELFTRAINED, small_pb, small_split, 6, dataset="d")
    emb = dataclasses.replace(emb, B=emb.B[:3])
    p = make_problem(small_pb, small_split, emb)
    _assert_same(lsft(p, pct, 0.1), lsft_reference(p, pct, 0.1))


def test_shared_matrices_are_cached_per_problem(small_pb, small_split):
    p = make_problem(small_pb, small_split, build_embedding(SELFTRAINED, small_pb, small_split, 5, dataset="d"))
    first = lsft(p, 10, 0.1)
    gram = p._lsft_shared.get("gram")
    second = lsft(p, 10, 0.1)
    assert p._lsft_shared.get("gram") is gram
    np.testing.assert_array_equal(first.local, second.local)


@pytest.mark.parametrize("center", ["local", "global"])
def test_cross_product_without_the_gram_shortcut(small_pb, small_split, center):
    """``C = X_gᵀY`` formed directly (the path for a Y that is not expression minus control)."""
    p = make_problem(small_pb, small_split, build_embedding(SELFTRAINED, small_pb, small_split, 5, dataset="d"))
    shortcut = lsft(p, 25, 0.1, center=center)
    assert p._lsft_shared.y_is_expr_minus_ctrl
    p._lsft_shared.y_is_expr_minus_ctrl = False
    direct = lsft(p, 25, 0.1, center=center)
    _assert_same(direct, lsft_reference(p, 25, 0.1, center=center))
    assert np.abs(direct.local - shortcut.local).max() <= 1e-10 * np.abs(direct.local).max()

