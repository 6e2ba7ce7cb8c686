"""Streaming writer of large synthetic GEARS files, and the streamed pseudobulk on its output."""

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest

from lsftbench.data.conditions import CTRL
from lsftbench.data.h5ad import cell_conditions, gene_symbols, open_perturb_data
from lsftbench.data.pseudobulk import pseudobulk
from lsftbench.data.synthetic.large import LargeSpec, calibrate_library_size, write_large_dataset

SPEC = LargeSpec(n_cells=3_000, n_genes=300, n_perts=60, n_unmeasured=3, density=0.15, seed=4)


@pytest.fixture(scope="module")
def large_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("large") / "perturb_processed.h5ad"
    summary = write_large_dataset(path, SPEC, chunk_cells=700, h5_chunk=4096)  # several uneven chunks
    return path, summary


def test_file_opens_as_gears_data(large_file):
    path, summary = large_file
    adata = open_perturb_data(path)
    try:
        assert adata.shape == (SPEC.n_cells, SPEC.n_genes)
        conditions = cell_conditions(adata)
        assert conditions.nunique() == SPEC.n_perts + 1 == summary["n_conditions"]
        assert (conditions == CTRL).sum() == round(SPEC.n_cells * SPEC.ctrl_fraction)
        assert conditions[conditions != CTRL].str.endswith("+ctrl").all()
        genes = gene_symbols(adata, path)
        targets = {c.split("+")[0] for c in conditions.unique() if c != CTRL}
        assert len(targets - set(genes)) == SPEC.n_unmeasured
        assert conditions.value_counts().min() >= 5
    finally:
        adata.file.close()
    with h5py.File(path, "r") as f:
        assert f["X"].attrs["encoding-type"] == "csr_matrix"
        assert f["X/data"].dtype == np.float32
    x = ad.read_h5ad(path).X
    assert x.format == "csr" and x.has_sorted_indices
    assert x.nnz == summary["nnz"]
    assert x.data.min() > 0 and np.isfinite(x.data).all()
    assert 0.5 * SPEC.density < summary["density"] < 1.5 * SPEC.density
    # log1p of counts normalised to 1e4 per cell: expm1 sums back to 1e4
    np.testing.assert_allclose(np.expm1(x.astype(np.float64)).sum(axis=1).A1, 1e4, rtol=1e-4)


def test_seeded(tmp_path, large_file):
    path, _ = large_file
    again = tmp_path / "again.h5ad"
    write_large_dataset(again, SPEC, chunk_cells=700, h5_chunk=4096)
    a, b = ad.read_h5ad(path), ad.read_h5ad(again)
    assert (a.X != b.X).nnz == 0
    assert (a.obs["condition"] == b.obs["condition"]).all()


def test_perturbation_knocks_down_its_target(large_file):
    path, _ = large_file
    pb = pseudobulk(path)
    ctrl = pb.X[0]
    rows = [(i, pb.var_names.get_loc(g)) for i, g in enumerate(pb.obs["gene"]) if g in pb.var_names]
    lfc = np.array([pb.X[i, j] - ctrl[j] for i, j in rows])
    assert np.median(lfc) < 0


@pytest.mark.parametrize("chunk", [1, 333, 10_000])
def test_pseudobulk_equals_dense_groupby(large_file, chunk):
    path, _ = large_file
    pb = pseudobulk(path, chunk_size=chunk)
    full = ad.read_h5ad(path)
    dense = pd.DataFrame(full.X.toarray().astype(np.float64), columns=full.var["gene_name"])
    expected = dense.groupby(full.obs["condition"].astype(str).to_numpy()).mean()
    np.testing.assert_allclose(np.asarray(pb.X), expected.loc[pb.obs_names].to_numpy(), rtol=1e-10, atol=1e-12)
    assert list(pb.var_names) == list(full.var["gene_name"])


def test_pseudobulk_of_csc_and_dense_files(tmp_path, large_file):
    """Layouts other than on-disk CSR give the same means (dense rows; CSC via anndata)."""
    path, _ = large_file
    ref = pseudobulk(path, chunk_size=500)
    full = ad.read_h5ad(path)
    for name, x in (("csc.h5ad", full.X.tocsc()), ("dense.h5ad", full.X.toarray())):
        other = full.copy()
        other.X = x
        other.write_h5ad(tmp_path / name)
        np.testing.assert_allclose(pseudobulk(tmp_path / name, chunk_size=500).X, ref.X, rtol=1e-12, atol=1e-14)


def test_calibrated_density():
    base = np.random.default_rng(0).gamma(0.6, 1.0, 1000) + 0.02
    base /= base.sum()
    lib = calibrate_library_size(base, 0.2)
    assert np.mean(-np.expm1(-lib * base)) == pytest.approx(0.2, rel=1e-9)
    with pytest.raises(ValueError):
        calibrate_library_size(base, 1.5)


def test_rejects_impossible_sizes(tmp_path):
    with pytest.raises(ValueError, match="more perturbed measured genes"):
        write_large_dataset(tmp_path / "x.h5ad", LargeSpec(n_cells=1000, n_genes=10, n_perts=50, n_unmeasured=0))
    assert not (tmp_path / "x.h5ad").exists()
