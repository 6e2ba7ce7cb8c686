"""Branches of the LSFT fast path that the default data do not reach, checked against the loop."""

import dataclasses

import numpy as np
import pytest

import lsftbench.model.lsft as lsft_module
from lsftbench.embeddings.build import build_embedding
from lsftbench.model.lsft import CENTERS, load_shared, lsft, lsft_reference, save_shared, top_neighbours
from lsftbench.model.problem import make_problem

SELFTRAINED = {"gene": {"type": "training_pca"}, "pert": {"type": "training_pca"}}


def _assert_same(fast, ref):
    assert fast.neighbours == ref.neighbours
    assert np.abs(fast.local - ref.local).max() <= 1e-10 * np.abs(ref.local).max()
    np.testing.assert_allclose(fast.knn, ref.knn, rtol=0, atol=1e-12)


@pytest.mark.parametrize("center", ["local", "global"])
def test_svd_fallback_equals_loop(small_pb, small_split, monkeypatch, center):
    """With a zero tolerance every local PCA takes the SVD fallback instead of the Gram eigenproblem."""
    p = make_problem(small_pb, small_split, build_embedding(SELFTRAINED, small_pb, small_split, 5, dataset="d"))
    monkeypatch.setattr(lsft_module, "GRAM_TOL", 0.0)
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



SHARED_SPECS = {
    "both_refit": SELFTRAINED,
    "gene_refit": {"gene": {"type": "training_pca"}, "pert": {"type": "random", "seed": 1}},
    "pert_refit": {"gene": {"type": "random", "seed": 1}, "pert": {"type": "training_pca"}},
    "fixed": {"gene": {"type": "random", "seed": 2}, "pert": {"type": "random", "seed": 3}},
    "mean": {"model": "mean", "pert": {"type": "training_pca"}},
}


@pytest.mark.parametrize("name", SHARED_SPECS)
@pytest.mark.parametrize("refit", [True, False])
def test_memory_mapped_shared_matrices_give_identical_predictions(small_pb, small_split, tmp_path, name, refit):
    """A K shard that memory-maps the matrices written once gets bit-identical predictions."""
    emb = build_embedding(SHARED_SPECS[name], small_pb, small_split, 5, dataset="d")
    written = save_shared(make_problem(small_pb, small_split, emb), tmp_path / "shared", refit_embeddings=refit)
    assert sorted(p.stem for p in (tmp_path / "shared").glob("*.npy")) == sorted(written)
    # the N x N products of the refit sides; nothing for baselines that refit nothing
    refits = refit and name not in ("fixed", "mean")
    assert bool(written) == refits and (not refits or {"gram", "gram_targets"} & set(written))
    for center in CENTERS:
        for pct in (5, 25):
            in_process = lsft(make_problem(small_pb, small_split, emb), pct, 0.1, center=center, refit_embeddings=refit)
            shard = make_problem(small_pb, small_split, emb)
            mapped = lsft(shard, pct, 0.1, center=center, refit_embeddings=refit, tests=shard.test[1::2],
                          shared=tmp_path / "shared")
            assert all(isinstance(shard._lsft_shared._cache[a], np.memmap) for a in written)
            np.testing.assert_array_equal(mapped.local, in_process.local[:, 1::2])
            np.testing.assert_array_equal(mapped.knn, in_process.knn[:, 1::2])
            assert mapped.neighbours == in_process.neighbours[1::2]


def test_shared_matrices_of_other_inputs_are_refused(small_pb, small_split, tmp_path):
    emb = build_embedding(SELFTRAINED, small_pb, small_split, 5, dataset="d")
    save_shared(make_problem(small_pb, small_split, emb), tmp_path / "shared")
    other = dict(small_split, train=small_split["train"][:-1], test=small_split["test"] + small_split["train"][-1:])
    with pytest.raises(ValueError, match="other inputs"):
        load_shared(make_problem(small_pb, other, emb), tmp_path / "shared")
    with pytest.raises(ValueError, match="meta.json"):
        load_shared(make_problem(small_pb, small_split, emb), tmp_path / "nowhere")


def test_top_neighbours_equals_stable_argsort_with_ties():
    rng = np.random.default_rng(0)
    sims = rng.integers(0, 5, size=(40, 30)).astype(float) / 4  # many ties
    sims[3] = 0.5  # a row of equal values
    sims[7, :10] = -0.0
    for n in (1, 2, 7, 29, 30):
        np.testing.assert_array_equal(top_neighbours(sims, n), np.argsort(-sims, axis=1, kind="stable")[:, :n])
    sims[5, 4] = np.nan  # non-finite rows take the full sort
    np.testing.assert_array_equal(top_neighbours(sims, 6), np.argsort(-sims, axis=1, kind="stable")[:, :6])


@pytest.mark.parametrize("center", ["local", "global"])
def test_subset_eigensolver_path_equals_loop(small_pb, small_split, monkeypatch, center):
    """Neighbour sets above _NUMPY_EIGH_MAX_N use SciPy's subset eigensolver: the same predictions."""
    p = make_problem(small_pb, small_split, build_embedding(SELFTRAINED, small_pb, small_split, 5, dataset="d"))
    monkeypatch.setattr(lsft_module, "_NUMPY_EIGH_MAX_N", 0)
    _assert_same(lsft(p, 50, 0.1, center=center), lsft_reference(p, 50, 0.1, center=center))


def test_nothing_shared_writes_only_the_meta_file(small_pb, small_split, tmp_path):
    """seed_compat's global fit shares nothing: a directory with meta.json alone, which a shard accepts."""
    emb = build_embedding(SELFTRAINED, small_pb, small_split, 5, dataset="d")
    assert save_shared(make_problem(small_pb, small_split, emb), tmp_path / "shared", share=False) == []
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["meta.json"]
    shard = make_problem(small_pb, small_split, emb)
    assert load_shared(shard, tmp_path / "shared") == []
    reference = lsft(make_problem(small_pb, small_split, emb), 10, 0.1)
    np.testing.assert_array_equal(lsft(shard, 10, 0.1, shared=tmp_path / "shared").local, reference.local)
