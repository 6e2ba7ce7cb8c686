"""Streaming pseudobulk (SPEC 3) and input validation (SPEC 1)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lsftbench.data.h5ad import InputDataError, open_perturb_data
from lsftbench.data.pseudobulk import delta, pseudobulk


def _write(tmp_path, x, conditions, genes=None, name="d.h5ad", sparse=True):
    genes = genes or [f"G{i}" for i in range(x.shape[1])]
    a = ad.AnnData(
        X=sp.csr_matrix(x, dtype=np.float32) if sparse else np.asarray(x, dtype=np.float32),
        obs=pd.DataFrame({"condition": pd.Categorical(conditions)}, index=[f"c{i}" for i in range(len(conditions))]),
        var=pd.DataFrame({"gene_name": genes}, index=[f"E{i}" for i in range(len(genes))]),
    )
    path = tmp_path / name
    a.write_h5ad(path)
    return path


@pytest.mark.parametrize("chunk", [1, 7, 100, 10_000])
def test_streamed_means_equal_dense_groupby(small_h5ad, chunk):
    pb = pseudobulk(small_h5ad, chunk_size=chunk)
    full = ad.read_h5ad(small_h5ad)
    dense = pd.DataFrame(full.X.toarray().astype(np.float64), columns=full.var["gene_name"])
    expected = dense.groupby(full.obs["condition"].astype(str).to_numpy()).mean()
    np.testing.assert_allclose(np.asarray(pb.X), expected.loc[pb.obs_names].to_numpy(), rtol=1e-6, atol=1e-9)
    counts = full.obs["condition"].astype(str).value_counts()
    assert (pb.obs["n_cells"] == counts.loc[pb.obs_names].to_numpy()).all()
    assert pb.obs_names[0] == "ctrl"
    np.testing.assert_allclose(pb.var["ctrl_mean"].to_numpy(), expected.loc["ctrl"].to_numpy(), rtol=1e-6)


def test_known_answer_and_delta(tmp_path):
    # Quarter steps: log-normalised data have fractional values (whole numbers alone read as raw counts).
    x = np.array([[1, 0], [3, 2], [5, 5], [7, 1], [0, 0]], dtype=float) / 4
    path = _write(tmp_path, x, ["ctrl", "ctrl", "A+ctrl", "A+ctrl", "B+ctrl"], sparse=False)
    pb = pseudobulk(path, chunk_size=2)
    assert list(pb.obs_names) == ["ctrl", "A+ctrl", "B+ctrl"]
    np.testing.assert_allclose(pb.X, np.array([[2, 1], [6, 3], [0, 0]]) / 4)
    d = delta(pb)
    np.testing.assert_allclose(d["A+ctrl"], np.array([4, 2]) / 4)
    np.testing.assert_allclose(d["B+ctrl"], np.array([-2, -1]) / 4)
    assert list(pb.obs["gene"]) == ["", "A", "B"]


@pytest.mark.parametrize(
    "case,match",
    [
        ("nan", "NaN or infinite"),
        ("inf", "NaN or infinite"),
        ("negative", "negative values"),
        ("no_ctrl", "no control cells"),
        ("dup_genes", "duplicated gene names"),
        ("no_condition", "no 'condition' column"),
    ],
)
def test_bad_input_names_file_and_problem(tmp_path, case, match):
    x = np.abs(np.random.default_rng(0).normal(size=(6, 3)))
    conds = ["ctrl", "ctrl", "A+ctrl", "A+ctrl", "B+ctrl", "B+ctrl"]
    genes = None
    if case == "nan":
        x[4, 1] = np.nan
    elif case == "inf":
        x[2, 0] = np.inf
    elif case == "negative":
        x[5, 2] = -0.5
    elif case == "no_ctrl":
        conds = ["C+ctrl"] * 2 + conds[2:]
    elif case == "dup_genes":
        genes = ["G1", "G2", "G1"]
    path = _write(tmp_path, x, conds, genes)
    if case == "no_condition":
        a = ad.read_h5ad(path)
        del a.obs["condition"]
        a.write_h5ad(path)
    with pytest.raises(InputDataError, match=match) as err:
        pseudobulk(path, chunk_size=2)
    assert str(path) in str(err.value)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(InputDataError, match="does not exist"):
        open_perturb_data(tmp_path / "nope.h5ad")
    bad = tmp_path / "bad.h5ad"
    bad.write_text("not hdf5")
    with pytest.raises(InputDataError, match="not a readable h5ad"):
        open_perturb_data(bad)


def test_split_condition_without_cells_is_an_error(small_h5ad, small_pb):
    from lsftbench.data.mean_expression import require_conditions

    require_conditions(small_pb, list(small_pb.obs_names), small_h5ad)
    with pytest.raises(InputDataError, match="zero cells") as err:
        require_conditions(small_pb, ["ctrl", "GHOST+ctrl"], small_h5ad)
    assert str(small_h5ad) in str(err.value) and "GHOST+ctrl" in str(err.value)


def test_mean_expression_reader_equals_anndata(small_h5ad, tmp_path):
    from lsftbench.data.mean_expression import read_mean_expression
    from lsftbench.io import write_h5ad

    pb = pseudobulk(small_h5ad)
    write_h5ad(pb, tmp_path / "pb.h5ad")
    means = read_mean_expression(tmp_path / "pb.h5ad")
    np.testing.assert_array_equal(means.X, pb.X)
    assert list(means.obs_names) == list(pb.obs_names) and list(means.var_names) == list(pb.var_names)


@pytest.mark.parametrize("categorical", [True, False])
def test_a_condition_spelled_two_ways_is_one_condition(tmp_path, categorical):
    """``A+B``/``B+A`` (and ``G+ctrl``/``ctrl+G``) are one condition named as its first cell names it, for the
    pseudobulk, the split's cell list, the noise ceiling and the published protocol's pseudobulk alike (SPEC 10)."""
    from lsftbench.data.conditions import count_perturbations
    from lsftbench.data.split import gears_simulation_split, split_conditions
    from lsftbench.evaluation.noise_ceiling import ceiling_replicates
    from lsftbench.model.seed_compat import published_pseudobulk

    conditions = ["ctrl", "B+A", "ctrl", "A+B", "A+ctrl", "B+A", "ctrl+A", "B+ctrl", "A+B", "ctrl", "B+ctrl"]
    x = np.arange(len(conditions) * 2, dtype=float).reshape(-1, 2) / 4 + 0.25
    column = pd.Categorical(conditions) if categorical else conditions
    obs = pd.DataFrame({"condition": column}, index=[f"c{i}" for i in range(len(x))])
    a = ad.AnnData(X=sp.csr_matrix(x, dtype=np.float32), obs=obs,
                   var=pd.DataFrame({"gene_name": ["A", "B"]}, index=["E0", "E1"]))
    path = tmp_path / "both_ways.h5ad"
    a.write_h5ad(path)

    read_as = {"B+A": "B+A", "A+B": "B+A", "A+ctrl": "A+ctrl", "ctrl+A": "A+ctrl", "B+ctrl": "B+ctrl", "ctrl": "ctrl"}
    pb = pseudobulk(path, chunk_size=3)
    assert list(pb.obs_names) == ["ctrl", "B+A", "A+ctrl", "B+ctrl"]
    assert pb.obs["n_cells"].tolist() == [3, 4, 2, 2]
    for name in pb.obs_names:
        rows = [i for i, c in enumerate(conditions) if read_as[c] == name]
        np.testing.assert_allclose(pb[name].X.ravel(), x[rows].mean(axis=0), rtol=1e-6)
    cells, dropped = split_conditions(path)
    assert cells == [read_as[c] for c in conditions] and dropped == []
    assert sorted(c for part in gears_simulation_split(cells, seed=1).values() for c in part) == sorted(pb.obs_names)
    reps = ceiling_replicates(path, pb, replicates=2, seed=1)
    assert reps.conditions == ["B+A", "A+ctrl", "B+ctrl"] and reps.n_cells.tolist() == [4, 2, 2]
    published = published_pseudobulk(path)
    assert sorted(published.obs_names) == sorted(pb.obs_names) and published["B+A"].obs["n_cells"].item() == 4
    if categorical:
        assert count_perturbations(path) == 3
