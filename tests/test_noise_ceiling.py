"""The streamed sampling-noise ceiling (SPEC 7 (b))."""

import tracemalloc

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lsftbench.data.h5ad import InputDataError
from lsftbench.data.pseudobulk import pseudobulk
from lsftbench.data.synthetic.large import LargeSpec, write_large_dataset
from lsftbench.evaluation.noise_ceiling import bootstrap_weights, ceiling_replicates, noise_ceiling

N_GENES, SIGMA = 60, 0.5
SIZES = {"G1+ctrl": 4, "G2+ctrl": 9, "G3+ctrl": 16, "G4+ctrl": 25, "G5+ctrl": 1}


def _write(path, x, conditions, sparse=True):
    a = ad.AnnData(
        X=sp.csr_matrix(x.astype(np.float32)) if sparse else x.astype(np.float32),
        obs=pd.DataFrame({"condition": pd.Categorical(conditions)}, index=[f"c{i}" for i in range(len(conditions))]),
        var=pd.DataFrame({"gene_name": [f"G{i}" for i in range(x.shape[1])]}, index=[f"E{i}" for i in range(x.shape[1])]),
    )
    a.write_h5ad(path)
    return path


@pytest.fixture(scope="module")
def gaussian(tmp_path_factory):
    """Cells = μ_t + N(0, σ²) noise, conditions interleaved at random (dense and sparse copies)."""
    rng = np.random.default_rng(11)
    conditions = ["ctrl"] * 30 + [c for c, n in SIZES.items() for _ in range(n)]
    conditions = list(rng.permutation(conditions))
    mu = {c: rng.uniform(4, 6, N_GENES) for c in set(conditions)}
    x = np.array([mu[c] + rng.normal(0, SIGMA, N_GENES) for c in conditions])
    assert x.min() > 0
    d = tmp_path_factory.mktemp("ceiling")
    sparse_path = _write(d / "sparse.h5ad", x, conditions)
    dense_path = _write(d / "dense.h5ad", x, conditions, sparse=False)
    return {"path": sparse_path, "dense": dense_path, "pb": pseudobulk(sparse_path), "x": x.astype(np.float32),
            "conditions": np.array(conditions)}


def test_expected_squared_error_matches_the_bootstrap_variance(gaussian):
    """E‖Δ* − Δ‖² = Σ_g s²_g / n_t (plug-in variance s², given the cells) ≈ genes·σ²·(n−1)/n² on average."""
    reps = ceiling_replicates(gaussian["path"], gaussian["pb"], replicates=1500, seed=3, chunk_size=13, block_cells=32)
    assert reps.metrics[1] == "l2"
    for k, cond in enumerate(reps.conditions):
        cells = gaussian["x"][gaussian["conditions"] == cond].astype(np.float64)
        n = len(cells)
        exact = ((cells - cells.mean(axis=0)) ** 2).mean(axis=0).sum() / n
        sq = reps.values[k, :, 1] ** 2
        if n == 1:
            assert exact == 0 and (sq == 0).all()
            continue
        se = sq.std(ddof=1) / np.sqrt(len(sq))
        assert abs(sq.mean() - exact) < 4 * se, cond
        # the population value: E over the cells too (relative sd of Σ_g s²_g is sqrt(2/(G(n−1))))
        analytic = N_GENES * SIGMA**2 * (n - 1) / n**2
        assert abs(sq.mean() - analytic) < 4 * analytic * np.sqrt(2 / (N_GENES * (n - 1))) + 4 * se, cond


def test_single_cell_condition_is_its_own_observation(gaussian):
    frame = noise_ceiling(gaussian["path"], gaussian["pb"], replicates=5, seed=0).set_index("condition")
    assert frame.loc["G5+ctrl", "l2"] == 0 and frame.loc["G5+ctrl", "pearson_r"] == pytest.approx(1.0, abs=1e-12)
    assert frame.loc["G5+ctrl", "n_cells"] == 1 and frame.loc["G5+ctrl", "l2_se"] == 0
    assert list(frame.index) == [c for c in pd.unique(gaussian["conditions"]) if c != "ctrl"]
    assert (frame["replicates"] == 5).all()


def test_streaming_result_is_identical_for_any_chunking_batching_and_storage(gaussian):
    kw = dict(replicates=12, seed=7, block_cells=8, centers={"m": np.linspace(-1, 1, N_GENES)})
    ref = noise_ceiling(gaussian["path"], gaussian["pb"], chunk_size=10_000, **kw)
    for other in (
        noise_ceiling(gaussian["path"], gaussian["pb"], chunk_size=1, **kw),
        noise_ceiling(gaussian["path"], gaussian["pb"], chunk_size=7, **kw),
        noise_ceiling(gaussian["dense"], gaussian["pb"], chunk_size=19, **kw),
    ):
        pd.testing.assert_frame_equal(other, ref, check_exact=True)
    # one replicate per pass: the same sums, scored one column at a time (NumPy then sums pairwise)
    batched = noise_ceiling(gaussian["path"], gaussian["pb"], chunk_size=7, max_bytes=1, **kw)
    pd.testing.assert_frame_equal(batched, ref, check_exact=False, rtol=1e-12, atol=1e-15)
    different = noise_ceiling(gaussian["path"], gaussian["pb"], chunk_size=7, **{**kw, "seed": 8})
    assert not np.allclose(different["l2"], ref["l2"])


def test_centred_ceiling_with_zero_centre_equals_plain(gaussian):
    frame = noise_ceiling(gaussian["path"], gaussian["pb"], replicates=6, centers={"zero": np.zeros(N_GENES)}, top_n=10)
    np.testing.assert_array_equal(frame["centered_pearson_r_zero"], frame["pearson_r"])
    assert (frame["pearson_delta_top1000"] != frame["pearson_r"]).any()  # 10 of 60 genes
    with pytest.raises(ValueError, match="genes"):
        noise_ceiling(gaussian["path"], gaussian["pb"], replicates=2, centers={"bad": np.zeros(3)})


def test_subset_of_conditions_and_input_errors(gaussian):
    frame = noise_ceiling(gaussian["path"], gaussian["pb"], replicates=4, seed=5, conditions=["G4+ctrl", "G2+ctrl"])
    assert list(frame["condition"]) == ["G4+ctrl", "G2+ctrl"]
    with pytest.raises(InputDataError, match="no cells"):
        noise_ceiling(gaussian["path"], gaussian["pb"], replicates=2, conditions=["G9+ctrl"])
    with pytest.raises(InputDataError, match="no cells or are ctrl"):
        noise_ceiling(gaussian["path"], gaussian["pb"], replicates=2, conditions=["ctrl"])
    wrong = ad.AnnData(X=np.asarray(gaussian["pb"].X)[:, ::-1], obs=gaussian["pb"].obs,
                       var=pd.DataFrame(index=gaussian["pb"].var_names[::-1]))
    with pytest.raises(InputDataError, match="genes differ"):
        noise_ceiling(gaussian["path"], wrong, replicates=2)


def test_bootstrap_weights_are_multinomial_draws():
    rng = np.random.default_rng(0)
    n_cells = np.array([3, 10, 1, 6])
    cell_target = rng.permutation(np.concatenate([np.full(7, -1), np.repeat(np.arange(4), n_cells)]))
    reps = 4000
    counts = np.zeros((reps, len(cell_target)))
    for cells, r, c in bootstrap_weights(cell_target, n_cells, reps, seed=1, block_cells=5):
        counts[r, cells] = c
    assert (counts[:, cell_target < 0] == 0).all()
    for t, n in enumerate(n_cells):
        w = counts[:, cell_target == t]
        assert (w.sum(axis=1) == n).all()  # |C_t| draws in every replicate
        assert w.mean() == pytest.approx(1.0, abs=4 * np.sqrt((1 - 1 / n) / (reps * n)) + 1e-12)
        assert w.var(axis=0).mean() == pytest.approx(1 - 1 / n, rel=0.1, abs=1e-12)  # Binomial(n, 1/n)


def _peak_bytes(path, pb, **kw):
    tracemalloc.start()
    try:
        ceiling_replicates(path, pb, **kw)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_flat_in_the_number_of_cells(tmp_path):
    peaks = []
    for n_cells in (3_000, 12_000):
        path = tmp_path / f"d{n_cells}.h5ad"
        write_large_dataset(path, LargeSpec(n_cells=n_cells, n_genes=400, n_perts=12, n_unmeasured=0, seed=2))
        pb = pseudobulk(path)
        peaks.append(_peak_bytes(path, pb, replicates=64, chunk_size=500, block_cells=256))
    # 9,000 more cells: a term in cells × replicates (8 B) or cells × genes (4 B) would add ≥ 4.6 MB;
    # what grows is the per-cell condition codes and obs names read by anndata (< 200 B per cell).
    assert peaks[1] - peaks[0] < 9_000 * 200, peaks
