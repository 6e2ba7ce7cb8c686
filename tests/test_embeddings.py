"""Embeddings (SPEC 4): PCA scores, sign invariance, coverage of unmeasured genes."""

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from lsftbench.embeddings.build import Embedding, TrainingPCA, build_embedding, training_pca
from lsftbench.embeddings.pca import pca_scores
from lsftbench.model.global_fit import global_predictions
from lsftbench.model.problem import make_problem

SELF = {"gene": {"type": "training_pca"}, "pert": {"type": "training_pca"}}


def test_pca_scores_match_sklearn_up_to_sign():
    x = np.random.default_rng(0).normal(size=(50, 8))
    ours = pca_scores(x, 3)
    ref = PCA(n_components=3, svd_solver="full").fit_transform(x)
    for j in range(3):
        assert min(np.abs(ours[:, j] - ref[:, j]).max(), np.abs(ours[:, j] + ref[:, j]).max()) < 1e-10


def test_pca_dims_capped_by_rank_bound():
    assert pca_scores(np.ones((5, 2)) + np.arange(10).reshape(5, 2), 10).shape == (5, 2)


def test_training_pca_embedding_layout(small_pb, small_split):
    emb = build_embedding(SELF, small_pb, small_split, 5, dataset="d")
    assert emb.A.shape == (small_pb.n_vars, 5)
    np.testing.assert_array_equal(emb.column("ctrl"), np.zeros(5))
    # B column of a single = the score row of its target gene
    cond = next(c for c in emb.conditions if c != "ctrl")
    gene = cond.split("+")[0]
    np.testing.assert_array_equal(emb.column(cond), emb.A[emb.genes.get_loc(gene)])
    # unmeasured target genes are reported, not dropped silently
    unmeasured = [c for c in small_pb.obs_names if c != "ctrl" and c.split("+")[0] not in small_pb.var_names]
    split_conds = {c for part in small_split.values() for c in part}
    assert set(emb.info["not_predictable"]) == {c for c in unmeasured if c in split_conds}


def test_predictions_invariant_to_pc_sign_flips(small_pb, small_split):
    emb = build_embedding(SELF, small_pb, small_split, 6, dataset="d")
    problem = make_problem(small_pb, small_split, emb)
    base = global_predictions(problem, 0.1)
    flips = np.array([1, -1, 1, -1, -1, 1.0])
    flipped = Embedding(emb.genes, emb.A * flips, emb.conditions, emb.B * flips[:, None], emb.gene_type, emb.pert_type)
    again = global_predictions(make_problem(small_pb, small_split, flipped), 0.1)
    np.testing.assert_allclose(again, base, rtol=1e-10, atol=1e-12)


def test_random_embedding_is_seeded(small_pb, small_split):
    spec = {"gene": {"type": "random", "seed": 4}, "pert": {"type": "random", "seed": 5}}
    e1 = build_embedding(spec, small_pb, small_split, 3, dataset="d")
    e2 = build_embedding(spec, small_pb, small_split, 3, dataset="d")
    np.testing.assert_array_equal(e1.A, e2.A)
    np.testing.assert_array_equal(e1.B, e2.B)
    assert not np.allclose(e1.A, build_embedding({**spec, "gene": {"type": "random", "seed": 6}}, small_pb, small_split, 3, dataset="d").A)


def test_dataset_pca_same_source_gives_tests_no_embedding(small_pb, small_split):
    spec = {"gene": {"type": "training_pca"}, "pert": {"type": "dataset_pca", "dataset": "d"}}
    emb = build_embedding(spec, small_pb, small_split, 4, dataset="d", source_pseudobulk=small_pb, source_dataset="d")
    assert emb.info["n_test_predictable"] == 0
    other = build_embedding(spec, small_pb, small_split, 4, dataset="x", source_pseudobulk=small_pb, source_dataset="d")
    assert other.info["n_test_predictable"] > 0


def test_dataset_pca_is_pca_over_conditions(small_pb, small_split):
    spec = {"gene": {"type": "training_pca"}, "pert": {"type": "dataset_pca", "dataset": "src"}}
    emb = build_embedding(spec, small_pb, small_split, 4, dataset="x", source_pseudobulk=small_pb, source_dataset="src")
    ref = PCA(n_components=4, svd_solver="full").fit_transform(np.asarray(small_pb.X))
    cond = emb.conditions[5]
    ref_row = ref[small_pb.obs_names.get_loc(cond)]
    ours = emb.column(cond)
    assert np.allclose(np.abs(ours), np.abs(ref_row), atol=1e-10)


def test_table_embedding_drops_missing_genes(small_pb, small_split):
    genes = list(small_pb.var_names[:80])
    table = pd.DataFrame(np.random.default_rng(0).normal(size=(80, 7)), index=genes)
    spec = {"gene": {"type": "table", "path": "x"}, "pert": {"type": "training_pca"}}
    emb = build_embedding(spec, small_pb, small_split, 5, dataset="d", gene_table=table)
    assert list(emb.genes) == genes
    assert emb.info["genes_dropped_not_in_table"] == small_pb.n_vars - 80
    assert emb.A.shape == (80, 7)


def test_save_load_roundtrip(tmp_path, small_pb, small_split):
    emb = build_embedding(SELF, small_pb, small_split, 3, dataset="d")
    emb.save(tmp_path / "e.npz")
    back = Embedding.load(tmp_path / "e.npz")
    np.testing.assert_array_equal(back.A, emb.A)
    np.testing.assert_array_equal(back.B, emb.B)
    assert list(back.conditions) == list(emb.conditions) and back.info == emb.info


def test_unknown_type_is_an_error(small_pb, small_split):
    with pytest.raises(ValueError, match="unknown gene embedding type"):
        build_embedding({"gene": {"type": "nope"}, "pert": {"type": "training_pca"}}, small_pb, small_split, 3, dataset="d")


def test_truncated_svd_path_matches_full_svd():
    """Large inputs take the Lanczos path; scores equal the full SVD's up to rounding."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1500, 12)) * np.linspace(5, 1, 12) @ rng.normal(size=(12, 1100)) + 0.1 * rng.normal(size=(1500, 1100))
    ours = pca_scores(x, 10)
    centred = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    ref = u[:, :10] * s[:10]
    for j in range(10):
        assert min(np.abs(ours[:, j] - ref[:, j]).max(), np.abs(ours[:, j] + ref[:, j]).max()) < 1e-8 * s[0]


def test_training_pca_computed_once_gives_the_same_embeddings(small_pb, small_split, tmp_path):
    """The shared training PCA (computed once per dataset and split, saved, loaded) changes no number."""
    shared = training_pca(small_pb, small_split, 5)
    shared.save(tmp_path / "training_pca.npz")
    loaded = TrainingPCA.load(tmp_path / "training_pca.npz")
    np.testing.assert_array_equal(loaded.scores, shared.scores)
    assert loaded.genes.equals(shared.genes) and shared.genes.equals(small_pb.var_names)
    assert loaded.train == tuple(small_split["train"]) and loaded.dim == 5
    for spec in (SELF, {"gene": {"type": "training_pca"}, "pert": {"type": "random", "seed": 1}},
                 {"gene": {"type": "random", "seed": 1}, "pert": {"type": "training_pca"}}):
        fresh = build_embedding(spec, small_pb, small_split, 5, dataset="d")
        reused = build_embedding(spec, small_pb, small_split, 5, dataset="d", training_scores=loaded)
        np.testing.assert_array_equal(reused.A, fresh.A)
        np.testing.assert_array_equal(reused.B, fresh.B)
        assert list(reused.conditions) == list(fresh.conditions) and reused.info == fresh.info


def test_training_pca_of_another_split_or_dimension_is_refused(small_pb, small_split):
    shared = training_pca(small_pb, small_split, 5)
    other = dict(small_split, train=small_split["train"][:-1])
    with pytest.raises(ValueError, match="other training conditions"):
        build_embedding(SELF, small_pb, other, 5, dataset="d", training_scores=shared)
    with pytest.raises(ValueError, match="dimension is 5"):
        build_embedding(SELF, small_pb, small_split, 4, dataset="d", training_scores=shared)


def test_mean_expression_input_gives_the_anndata_embeddings(small_pb, small_split, tmp_path):
    """Embedding jobs may read the pseudobulk with h5py (no anndata import): identical embeddings."""
    from lsftbench.data.mean_expression import read_mean_expression
    from lsftbench.io import write_h5ad

    write_h5ad(small_pb, tmp_path / "pb.h5ad")
    means = read_mean_expression(tmp_path / "pb.h5ad")
    spec = {"gene": {"type": "training_pca"}, "pert": {"type": "dataset_pca", "dataset": "src"}}
    a = build_embedding(spec, small_pb, small_split, 4, dataset="x", source_pseudobulk=small_pb, source_dataset="src")
    b = build_embedding(spec, means, small_split, 4, dataset="x", source_pseudobulk=means, source_dataset="src")
    np.testing.assert_array_equal(a.A, b.A)
    np.testing.assert_array_equal(a.B, b.B)
    assert a.info == b.info


def test_tall_matrices_take_the_gram_shortcut_with_the_svd_scores():
    """A genes × conditions-shaped input gets its scores from the small Gram matrix: the SVD's up to
    rounding; with tied eigenvalues (ill-defined single components) it falls back to the SVD."""
    from lsftbench.embeddings import pca

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 6)) * np.linspace(6, 1, 6) @ rng.normal(size=(6, 40)) + 0.05 * rng.normal(size=(400, 40))
    centred = x - x.mean(axis=0)
    assert pca._gram_scores(centred, 5) is not None
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(pca_scores(x, 5), pca.fix_signs(u[:, :5] * s[:5]), rtol=0, atol=1e-10 * s[0])
    tied = np.zeros((400, 40))
    tied[np.arange(40), np.arange(40)] = 1.0  # every eigenvalue of CᵀC is the same
    assert pca._gram_scores(tied - tied.mean(axis=0), 5) is None
    assert pca_scores(tied, 5).shape == (400, 5)
