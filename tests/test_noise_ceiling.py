"""The streamed sampling-noise ceiling from disjoint halves of the cells (SPEC 7 (b)): known answers."""

import tracemalloc

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lsftbench.data.h5ad import InputDataError
from lsftbench.data.pseudobulk import pseudobulk
from lsftbench.data.synthetic.large import LargeSpec, write_large_dataset
from lsftbench.evaluation.noise_ceiling import MIN_CELLS, ceiling_replicates, half_split_weights, noise_ceiling

N_GENES, SIGMA = 60, 0.5
SIZES = {"G1+ctrl": 4, "G2+ctrl": 9, "G3+ctrl": 16, "G4+ctrl": 25, "G5+ctrl": 3}


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


def test_half_differences_estimate_the_sampling_error_of_the_mean(gaussian):
    """For cells μ_t + N(0, σ²): E‖Δ_H₁ − Δ_H₂‖² = G·σ²·n/(n₁n₂), so the L2 ceiling is the expected error of the
    full-size mean, sqrt(G·σ²/n); the MAE ceiling E|mean − μ| = σ·sqrt(2/π)/sqrt(n) per gene."""
    reps = ceiling_replicates(gaussian["path"], gaussian["pb"], replicates=1500, seed=3, chunk_size=13, block_cells=32)
    frame = reps.frame().set_index("condition")
    for k, cond in enumerate(reps.conditions):
        n = SIZES[cond]
        if n < MIN_CELLS:
            assert np.isnan(reps.values[k]).all() and frame.loc[cond, "too_few_cells"]
            assert np.isnan(frame.loc[cond, ["l2", "mae", "pearson_r"]].astype(float)).all()
            continue
        n1 = n // 2
        cells = gaussian["x"][gaussian["conditions"] == cond].astype(np.float64)
        # given the cells: E over random halves of ‖mean(H₁) − mean(H₂)‖² = Σ_g s²_g · n/(n₁n₂) (s²: ddof 1)
        exact = cells.var(axis=0, ddof=1).sum() * n / (n1 * (n - n1))
        sq = reps.values[k, :, reps.metrics.index("l2")]
        se = sq.std(ddof=1) / np.sqrt(len(sq))
        assert abs(sq.mean() - exact) < 4 * se, cond
        l2 = frame.loc[cond, "l2"]
        assert l2 == pytest.approx(np.sqrt(sq.mean() * n1 * (n - n1) / n**2), rel=1e-12)
        # the population value: sqrt(G·σ²/n), up to the spread of Σ_g s²_g (relative sd sqrt(2/(G(n−1))))
        expected = np.sqrt(N_GENES * SIGMA**2 / n)
        assert abs(l2 - expected) < 4 * expected * np.sqrt(2 / (N_GENES * (n - 1))) / 2 + 4 * se, cond
        mae = frame.loc[cond, "mae"]
        assert mae == pytest.approx(SIGMA * np.sqrt(2 / np.pi / n), rel=0.25), cond


def test_no_effect_gives_a_correlation_ceiling_near_zero_and_no_noise_gives_one(tmp_path):
    """The correlation ceiling is the Spearman-Brown level of disjoint halves: about 0 for a perturbation with
    no effect (a bootstrap redraw of the same cells would give at least sqrt(1/2)), exactly 1 (and L2 0) for one
    without noise; L2 equals the sampling error sqrt(G·σ²/n)."""
    rng = np.random.default_rng(5)
    genes, sigma = 3000, 0.5
    mu = rng.uniform(7, 9, genes)
    effect = rng.normal(0, 1, genes)
    groups = {"ctrl": mu + sigma * rng.standard_normal((3000, genes)),
              "G1+ctrl": mu + sigma * rng.standard_normal((80, genes)),
              "G2+ctrl": np.repeat((mu + effect)[None], 40, axis=0),
              "G3+ctrl": mu + effect + sigma * rng.standard_normal((60, genes))}
    conditions = np.concatenate([[c] * len(x) for c, x in groups.items()])
    order = rng.permutation(len(conditions))
    path = _write(tmp_path / "d.h5ad", np.vstack(list(groups.values()))[order], list(conditions[order]))
    frame = noise_ceiling(path, pseudobulk(path), replicates=40, seed=1, top_n=500).set_index("condition")
    no_effect, exact, noisy = (frame.loc[c] for c in ("G1+ctrl", "G2+ctrl", "G3+ctrl"))
    assert abs(no_effect["pearson_r_half"]) < 0.03 and no_effect["pearson_r"] < 0.2
    assert exact["pearson_r"] == pytest.approx(1.0, abs=1e-12) and exact["pearson_r_reliability"] == pytest.approx(1.0)
    assert exact["l2"] == 0 and exact["mae"] == 0
    assert noisy["pearson_r"] > 0.99  # a strong effect measured over 60 cells: a perfect model scores almost 1
    for row, n in ((no_effect, 80), (noisy, 60)):
        assert row["l2"] == pytest.approx(np.sqrt(genes * sigma**2 / n), rel=0.03)


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


def test_half_split_weights_are_uniform_random_halves():
    """Every replicate puts exactly ⌊n/2⌋ of each condition's cells into H₁, each cell with probability ⌊n/2⌋/n,
    and pairs of cells are no more often together than in a uniform random subset."""
    rng = np.random.default_rng(0)
    n_cells = np.array([4, 10, 7, 6])
    cell_target = rng.permutation(np.concatenate([np.full(7, -1), np.repeat(np.arange(4), n_cells)]))
    reps = 4000
    member = np.zeros((reps, len(cell_target)))
    for cells, r, c in half_split_weights(cell_target, n_cells, reps, seed=1, block_cells=5):
        member[r, cells] = c
    assert set(np.unique(member)) <= {0.0, 1.0}
    assert (member[:, cell_target < 0] == 0).all()
    for t, n in enumerate(n_cells):
        w = member[:, cell_target == t]
        assert (w.sum(axis=1) == n // 2).all()
        p = (n // 2) / n
        assert w.mean(axis=0) == pytest.approx(np.full(n, p), abs=4 * np.sqrt(p * (1 - p) / reps))
        together = (w[:, 0] * w[:, 1]).mean()  # hypergeometric: P(both) = k(k-1)/(n(n-1))
        k = n // 2
        assert together == pytest.approx(k * (k - 1) / (n * (n - 1)), abs=0.03)


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
