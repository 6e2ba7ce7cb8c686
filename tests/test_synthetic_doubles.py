"""The Norman-like synthetic double-perturbation dataset: GEARS format, its planted interactions and their truth."""

from __future__ import annotations

import numpy as np
import pytest

from lsftbench.data.conditions import count_perturbations, invalid_conditions, is_double
from lsftbench.data.h5ad import open_perturb_data
from lsftbench.data.pseudobulk import pseudobulk
from lsftbench.data.split import SUBGROUPS, gears_simulation_subgroups, paper_doubles_split, seen_subgroups
from lsftbench.data.synthetic.datasets import make_dataset
from lsftbench.data.synthetic.doubles import TRUTH_KEY, make_doubles_dataset
from lsftbench.data.synthetic.presets import PRESETS, preset_perturbations
from lsftbench.io import write_h5ad

TINY = dict(n_genes=60, n_targets=8, n_doubles=10, cells_per_pert=6, n_ctrl=30, interaction_pool=20)


@pytest.fixture(scope="module")
def norman(tmp_path_factory):
    """The ``norman`` preset as the pipeline writes it, its pseudobulk and the observed non-additivity."""
    path = tmp_path_factory.mktemp("norman") / "perturb_processed.h5ad"
    adata = make_dataset("norman", seed=1)
    write_h5ad(adata, path)
    pb = pseudobulk(path)
    truth = adata.uns[TRUTH_KEY]
    return {"path": path, "adata": adata, "pb": pb, "truth": truth, "e": _observed_nonadditivity(pb, truth["doubles"])}


def _delta(pb, name: str) -> np.ndarray:
    x = np.asarray(pb.X, dtype=np.float64)
    return x[pb.obs_names.get_loc(name)] - x[pb.obs_names.get_loc("ctrl")]


def _observed_nonadditivity(pb, doubles) -> np.ndarray:
    """e = Δ_AB − (Δ_A + Δ_B) of the pseudobulk, genes × doubles."""
    columns = []
    for double in doubles:
        a, b = double.split("+")
        columns.append(_delta(pb, double) - _delta(pb, f"{a}+ctrl") - _delta(pb, f"{b}+ctrl"))
    return np.array(columns).T


def test_norman_is_a_gears_dataset_of_singles_and_doubles(norman):
    adata = open_perturb_data(norman["path"])
    conditions = set(adata.obs["condition"].astype(str))
    adata.file.close()
    preset = PRESETS["norman"]
    doubles = sorted(c for c in conditions if is_double(c))
    singles = sorted(c for c in conditions if c.endswith("+ctrl"))
    assert (len(singles), len(doubles), preset.n_perts) == (36, 84, 120)
    assert len(conditions) == 121 and not invalid_conditions(conditions)
    assert count_perturbations(norman["path"]) == preset_perturbations("norman") == 120
    targets = {c.split("+")[0] for c in singles}
    assert all(set(d.split("+")) <= targets for d in doubles)  # every double's genes are perturbed alone too
    assert targets <= set(norman["adata"].var["gene_name"])
    assert norman["adata"].X.dtype == np.float32 and norman["adata"].X.min() >= 0
    assert list(norman["pb"].obs_names[:1]) == ["ctrl"] and set(norman["pb"].obs_names) == conditions
    assert norman["pb"].obs["n_cells"].min() >= 5 and norman["adata"].n_obs > 5000
    # a CRISPRa target's own expression rises
    rows = list(norman["pb"].var_names)
    assert np.mean([_delta(norman["pb"], f"{g}+ctrl")[rows.index(g)] > 0.5 for g in targets]) > 0.9


def test_truth_layout(norman):
    truth = norman["truth"]
    n_genes, n_doubles = 400, 84
    assert sorted(truth["doubles"]) == sorted(c for c in norman["pb"].obs_names if is_double(c))
    assert list(truth["genes"]) == list(norman["adata"].var["gene_name"])
    for key in ("expected_nonadditivity", "expected_delta", "synergy", "suppression"):
        assert truth[key].shape == (n_genes, n_doubles), key
    types = dict(zip(*np.unique(truth["type"], return_counts=True)))
    assert types == {"additive": 33, "synergy": 17, "suppression": 17, "dominant": 17}
    kind = truth["type"]
    assert (truth["synergy"].sum(axis=0) == np.where(kind == "synergy", 10, 0)).all()
    assert (truth["suppression"].sum(axis=0) == np.where(kind == "suppression", 10, 0)).all()
    in_pool = np.isin(truth["genes"], truth["interaction_pool"])
    assert len(truth["interaction_pool"]) == 100 and not (truth["synergy"] | truth["suppression"])[~in_pool].any()
    # the pool is the 100 genes of highest control expression
    ctrl = np.asarray(norman["pb"].X)[0]
    assert len(set(np.argsort(-ctrl)[:100]) & set(np.flatnonzero(in_pool))) >= 90
    dominant = kind == "dominant"
    assert all(g in d.split("+") for g, d in zip(truth["dominant_gene"][dominant], truth["doubles"][dominant]))
    assert (truth["dominant_gene"][~dominant] == "").all()
    # the planted shifts (±0.6 to 1.0 on the log-mean scale) are what the expected e mostly shows
    e = truth["expected_nonadditivity"]
    assert 0.5 < e[truth["synergy"]].mean() < 1.0 and -1.0 < e[truth["suppression"]].mean() < -0.5
    assert np.median(np.abs(e[:, kind == "additive"])) < 0.03


def test_planted_interactions_are_visible_in_the_pseudobulk(norman):
    truth, e = norman["truth"], norman["e"]
    kind = truth["type"]
    assert e[truth["synergy"]].mean() > 0.5 and (e[truth["synergy"]] > 0.1).all()
    assert e[truth["suppression"]].mean() < -0.5 and (e[truth["suppression"]] < -0.1).all()
    in_pool = np.isin(truth["genes"], truth["interaction_pool"])
    additive = e[np.ix_(in_pool, kind == "additive")]
    assert abs(additive.mean()) < 0.05 and np.median(np.abs(additive)) < 0.12
    # observed and expected non-additivity agree up to the sampling noise of ~40 cells per condition
    expected = truth["expected_nonadditivity"]
    assert np.corrcoef(e[in_pool].ravel(), expected[in_pool].ravel())[0, 1] > 0.85
    assert np.median(np.abs(e - expected)) < 0.1
    # a dominated double looks like its dominating gene's single, not like the sum of both (its own targets aside:
    # the masked gene is still activated)
    for double, gene in zip(truth["doubles"][kind == "dominant"], truth["dominant_gene"][kind == "dominant"]):
        other = next(g for g in double.split("+") if g != gene)
        rows = in_pool & ~np.isin(truth["genes"], double.split("+"))
        observed, alone = _delta(norman["pb"], double)[rows], _delta(norman["pb"], f"{gene}+ctrl")[rows]
        both = alone + _delta(norman["pb"], f"{other}+ctrl")[rows]
        assert np.linalg.norm(observed - alone) < np.linalg.norm(observed - both), double


def test_expected_nonadditivity_is_what_many_cells_show(tmp_path):
    """The analytic expectation against 3000 cells per condition: the difference is sampling noise."""
    adata = make_doubles_dataset("norman", seed=5, n_genes=60, n_targets=6, n_doubles=8, cells_per_pert=3000,
                                 n_ctrl=3000, interaction_pool=24)
    write_h5ad(adata, tmp_path / "d.h5ad")
    pb = pseudobulk(tmp_path / "d.h5ad")
    truth = adata.uns[TRUTH_KEY]
    error = _observed_nonadditivity(pb, truth["doubles"]) - truth["expected_nonadditivity"]
    var, n = np.asarray(pb.layers["variance"]), pb.obs["n_cells"].to_numpy()[:, None]
    se2 = {name: (var / n)[i] for i, name in enumerate(pb.obs_names)}
    se = np.sqrt(np.array([se2[d] + se2[d.split("+")[0] + "+ctrl"] + se2[d.split("+")[1] + "+ctrl"] + se2["ctrl"]
                           for d in truth["doubles"]]).T)
    z = error[se > 0] / se[se > 0]
    assert np.abs(error).mean() < 0.02 and np.abs(error).max() < 0.12
    assert abs(z.mean()) < 0.4 and 0.7 < z.std() < 1.3 and np.abs(z).max() < 5
    expected_delta = truth["expected_delta"]
    observed_delta = np.array([_delta(pb, d) for d in truth["doubles"]]).T
    assert np.abs(observed_delta - expected_delta).mean() < 0.02


def test_generator_is_deterministic():
    a = make_doubles_dataset("norman", seed=2, **TINY)
    b = make_dataset("norman", seed=2, **TINY)
    c = make_doubles_dataset("norman", seed=3, **TINY)
    assert (a.X != b.X).nnz == 0 and list(a.obs["condition"]) == list(b.obs["condition"])
    for key, value in a.uns[TRUTH_KEY].items():
        np.testing.assert_array_equal(value, b.uns[TRUTH_KEY][key], err_msg=key)
    assert a.X.shape != c.X.shape or (a.X != c.X).nnz > 0
    assert a.uns["synthetic"]["seed"] == 2 and a.uns["synthetic"]["n_doubles"] == 10
    assert len(set(a.obs["condition"])) == 1 + 8 + 10


def test_paper_split_of_norman_holds_out_only_doubles_of_trained_singles(norman):
    """Every single trains in the paper's split and every target has a single, so each held-out double is
    combo_seen2; GEARS's simulation split of the same data has all four subgroups."""
    cells = list(norman["adata"].obs["condition"].astype(str))
    for seed in (1, 2, 3):
        split = paper_doubles_split(cells, seed)
        assert (len(split["train"]), len(split["val"]), len(split["test"])) == (37 + 42, 21, 21)
        groups = seen_subgroups(split)
        for part in ("test", "val"):
            assert groups[part]["combo_seen2"] == split[part]
    gears = gears_simulation_subgroups(cells, seed=1)
    assert all(gears["test"][group] for group in SUBGROUPS)


def test_preset_perturbations_with_overrides():
    assert preset_perturbations("norman", {"n_doubles": 10.0, "n_targets": 8}) == 18
    assert preset_perturbations("adamson") == 84 and preset_perturbations("adamson", {"n_perts": 50.0}) == 50
    assert preset_perturbations("adamson", {"no_such_field": 3}) == 84 and preset_perturbations("unknown") is None
    with pytest.raises(ValueError, match="not a double-perturbation preset"):
        make_doubles_dataset("adamson")


def test_written_in_chunks_the_dataset_has_the_same_design_and_cells(tmp_path):
    """write_doubles_dataset (the Norman-sized benchmark input): the conditions of every cell, the genes and the truth
    of make_doubles_dataset at the same seed; the counts are other draws of the same model."""
    import anndata as ad

    from lsftbench.data.synthetic.doubles import write_doubles_dataset

    a = make_doubles_dataset("norman", seed=2, **TINY)
    sizes = write_doubles_dataset(tmp_path / "d.h5ad", "norman", seed=2, chunk_cells=37, **TINY)
    b = ad.read_h5ad(tmp_path / "d.h5ad")
    assert list(a.obs["condition"]) == list(b.obs["condition"]) and list(a.obs_names) == list(b.obs_names)
    assert a.var.equals(b.var) and list(a.obs["control"]) == list(b.obs["control"])
    for key, value in a.uns[TRUTH_KEY].items():
        np.testing.assert_array_equal(value, b.uns[TRUTH_KEY][key], err_msg=key)
    assert b.X.dtype == np.float32 and b.X.format == "csr" and (b.X != a.X).nnz > 0
    totals = np.expm1(b.X.toarray().astype(np.float64)).sum(axis=1)
    np.testing.assert_allclose(totals[totals > 0], 1e4, rtol=1e-3)  # normalize_total + log1p per cell, as GEARS's
    assert sizes["n_cells"] == a.n_obs and sizes["n_conditions"] == 1 + 8 + 10 and sizes["nnz"] == b.X.nnz


def test_more_genes_than_the_shared_pool_extend_it_and_keep_its_genes():
    """A dataset measuring more than the pool's 3,000 genes (a Norman-sized one: 5,000) extends the pool; the first
    3,000 genes' latent vectors, and so every smaller dataset, do not change."""
    from lsftbench.data.synthetic.count_model import GENE_POOL_SIZE, gene_pool, latent_loadings

    small, large = latent_loadings(4), latent_loadings(4, GENE_POOL_SIZE + 50)
    assert list(large.index[:GENE_POOL_SIZE]) == list(small.index) == list(gene_pool())
    np.testing.assert_array_equal(large.to_numpy()[:GENE_POOL_SIZE], small.to_numpy())
    assert large.index[-1] == "SYN3050" and np.isfinite(large.to_numpy()).all() and large.iloc[GENE_POOL_SIZE:].std().min() > 0
    adata = make_doubles_dataset("norman", seed=1, **{**TINY, "n_genes": GENE_POOL_SIZE + 20, "cells_per_pert": 2,
                                                       "n_ctrl": 10})
    assert adata.n_vars == GENE_POOL_SIZE + 20 and adata.var["gene_name"].iloc[-1] == "SYN3020"
