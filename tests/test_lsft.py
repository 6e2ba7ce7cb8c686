"""LSFT (SPEC 6): known answers, kNN reference, and parity of the fast path with the plain loop."""

import numpy as np
import pytest

from lsftbench.embeddings.build import build_embedding
from lsftbench.model.lsft import cosine_similarity, lsft, lsft_reference, n_neighbours
from lsftbench.model.problem import make_problem

SPECS = {
    "lpm_selftrained": {"gene": {"type": "training_pca"}, "pert": {"type": "training_pca"}},
    "lpm_randomGeneEmb": {"gene": {"type": "random", "seed": 1}, "pert": {"type": "training_pca"}},
    "lpm_randomPertEmb": {"gene": {"type": "training_pca"}, "pert": {"type": "random", "seed": 1}},
    "fixed_both": {"gene": {"type": "random", "seed": 2}, "pert": {"type": "random", "seed": 3}},
    "mean_response": {"model": "mean", "pert": {"type": "training_pca"}},
}


@pytest.fixture(scope="module")
def problems(small_pb, small_split):
    return {name: make_problem(small_pb, small_split, build_embedding(spec, small_pb, small_split, 5, dataset="d"))
            for name, spec in SPECS.items()}


@pytest.mark.parametrize("n_train,pct,expected", [(40, 1, 1), (40, 5, 2), (40, 10, 4), (761, 1, 8), (761, 5, 39),
                                                  (761, 10, 77), (1083, 1, 11), (1083, 5, 55), (1083, 10, 109), (100, 5, 5), (7, 0.5, 1)])
def test_n_neighbours(n_train, pct, expected):
    assert n_neighbours(n_train, pct) == expected


@pytest.mark.parametrize("name", SPECS)
def test_one_neighbour_local_centre_predicts_that_neighbour(problems, name):
    p = problems[name]
    pct = 100 / len(p.train_perts) * 0.5  # n = 1
    res = lsft(p, pct, 0.1, center="local")
    assert res.n_neighbours == 1
    for i, t in enumerate(res.conditions):
        (nb,) = res.neighbours[i]
        np.testing.assert_allclose(res.local[:, i], p.y[:, p.col([nb])[0]], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("pct", [5, 10, 25])
def test_knn_reference_is_neighbour_mean_and_neighbours_are_most_similar(problems, name, pct):
    p = problems[name]
    res = lsft(p, pct, 0.1)
    sims = cosine_similarity(p.b(res.conditions), p.b(p.train_perts))
    for i, t in enumerate(res.conditions):
        cols = p.col(res.neighbours[i])
        np.testing.assert_allclose(res.knn[:, i], p.y[:, cols].mean(axis=1), atol=1e-14)
        kept = [p.train_perts.index(c) for c in res.neighbours[i]]
        rest = sorted(set(range(len(p.train_perts))) - set(kept))
        assert sims[i, kept].min() >= sims[i, rest].max()
        assert res.mean_similarity[i] == pytest.approx(sims[i, kept].mean())


def test_ties_are_broken_by_training_order(small_pb, small_split):
    emb = build_embedding(SPECS["lpm_randomPertEmb"], small_pb, small_split, 5, dataset="d")
    p = make_problem(small_pb, small_split, emb)
    t = p.test[0]
    for c in p.train_perts:  # every candidate exactly as similar as every other
        emb.B[:, emb.conditions.get_loc(c)] = emb.column(t)
    res = lsft(p, 10, 0.1, tests=[t])
    assert res.neighbours[0] == p.train_perts[: res.n_neighbours]
    assert lsft_reference(p, 10, 0.1, tests=[t]).neighbours == res.neighbours


@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("center", ["local", "global"])
@pytest.mark.parametrize("refit", [True, False])
@pytest.mark.parametrize("pct", [1, 10, 50])
def test_fast_path_equals_reference_loop(problems, name, center, refit, pct):
    p = problems[name]
    fast = lsft(p, pct, 0.1, center=center, refit_embeddings=refit)
    ref = lsft_reference(p, pct, 0.1, center=center, refit_embeddings=refit)
    assert fast.neighbours == ref.neighbours
    scale = np.abs(ref.local).max()
    assert np.abs(fast.local - ref.local).max() <= 1e-10 * scale
    np.testing.assert_allclose(fast.knn, ref.knn, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.mean_similarity, ref.mean_similarity, rtol=0, atol=1e-12)


def test_refit_uses_local_pca(problems):
    """With refit, predictions differ from the fixed-embedding subset fit (the PCA is recomputed)."""
    p = problems["lpm_selftrained"]
    a = lsft(p, 25, 0.1, refit_embeddings=True)
    b = lsft(p, 25, 0.1, refit_embeddings=False)
    assert np.abs(a.local - b.local).max() > 1e-6


def test_chunked_tests_equal_whole(problems):
    p = problems["lpm_selftrained"]
    whole = lsft(p, 10, 0.1)
    parts = [lsft(p, 10, 0.1, tests=chunk.tolist()) for chunk in np.array_split(np.array(p.test, dtype=object), 3)]
    np.testing.assert_array_equal(np.hstack([r.local for r in parts]), whole.local)


def test_bad_center_and_unknown_tests(problems):
    p = problems["lpm_selftrained"]
    with pytest.raises(ValueError, match="center"):
        lsft(p, 5, 0.1, center="median")
    with pytest.raises(ValueError, match="not predictable"):
        lsft(p, 5, 0.1, tests=["NOPE+ctrl"])
