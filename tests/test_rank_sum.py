"""The streamed Wilcoxon rank-sum test (SPEC 7.2): parity with pdex 0.3.0 and scipy, ties, edge cases, streaming."""

from __future__ import annotations

import logging

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.stats import false_discovery_control, mannwhitneyu

from lsftbench.data.h5ad import InputDataError
from lsftbench.evaluation.rank_sum import rank_sum_test
from lsftbench.io import write_h5ad

#: Nonzero levels: log-normalised data repeat values (within a group and across groups).
LEVELS = np.array([0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0], dtype=np.float32)
#: Genes with a known layout, at the end of every test matrix.
SPECIAL = ("ALLZERO", "ALLSAME", "CTRLCONST", "PERTCONST")
#: Cells per perturbation of the small input (1–3 cells: the tiny groups).
SMALL_SIZES = (1, 2, 3, 5, 12, 30)


def _conditions(rng: np.random.Generator, n_ctrl: int, sizes: tuple[int, ...]) -> np.ndarray:
    cells = ["ctrl"] * n_ctrl + [f"P{i}+ctrl" for i, n in enumerate(sizes) for _ in range(n)]
    return np.asarray(cells, dtype=object)[rng.permutation(len(cells))]


def _tied_matrix(rng: np.random.Generator, conditions: np.ndarray, n_genes: int) -> np.ndarray:
    """Cells × genes float32: mostly zeros and repeated levels, three continuous genes, perturbation effects,
    and the :data:`SPECIAL` genes last."""
    n = len(conditions)
    x = rng.choice(LEVELS, size=(n, n_genes))
    x[rng.random((n, n_genes)) < rng.uniform(0.3, 0.95, size=n_genes)] = 0
    x[:, :3] = (rng.gamma(2.0, 0.6, size=(n, 3)) * (rng.random((n, 3)) < 0.6)).astype(np.float32)
    perts = [c for c in pd.unique(conditions) if c != "ctrl"]
    for c in perts:  # a fifth of the genes up or down in each perturbation
        rows = np.flatnonzero(conditions == c)
        genes = rng.choice(np.arange(3, n_genes), size=max(2, n_genes // 5), replace=False)
        up, down = genes[: len(genes) // 2], genes[len(genes) // 2 :]
        x[np.ix_(rows, up)] = rng.choice(LEVELS[3:], size=(len(rows), len(up)))
        x[np.ix_(rows, down)] *= rng.random((len(rows), len(down))) < 0.2
    ctrl = conditions == "ctrl"
    special = np.zeros((n, len(SPECIAL)), dtype=np.float32)
    special[:, 1] = 0.75  # every cell the same nonzero value
    special[:, 2] = np.where(ctrl, 0.5, rng.choice(LEVELS, size=n))  # constant in the control group
    special[:, 3] = rng.choice(np.r_[0, LEVELS], size=n)
    special[conditions == perts[-1], 3] = 1.5  # constant in one perturbation
    return np.hstack([x, special]).astype(np.float32)


def _adata(x: np.ndarray | sp.csr_matrix, conditions: np.ndarray) -> ad.AnnData:
    names = [f"SYN{i:04d}" for i in range(x.shape[1] - len(SPECIAL))] + list(SPECIAL)
    return ad.AnnData(
        X=x if sp.issparse(x) else sp.csr_matrix(x),
        obs=pd.DataFrame({"condition": pd.Categorical(conditions)}, index=[f"cell{i}" for i in range(len(conditions))]),
        var=pd.DataFrame({"gene_name": names}, index=names),
    )


def _dataset(tmp_path_factory, name: str, seed: int, n_ctrl: int, sizes: tuple[int, ...], n_genes: int):
    rng = np.random.default_rng(seed)
    conditions = _conditions(rng, n_ctrl, sizes)
    x = _tied_matrix(rng, conditions, n_genes)
    adata = _adata(x, conditions)
    path = tmp_path_factory.mktemp(name) / "perturb_processed.h5ad"
    write_h5ad(adata.copy(), path)
    return path, adata


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return _dataset(tmp_path_factory, "small", seed=1, n_ctrl=60, sizes=SMALL_SIZES, n_genes=36)


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    sizes = tuple(int(n) for n in np.random.default_rng(7).integers(1, 80, size=40))
    return _dataset(tmp_path_factory, "medium", seed=2, n_ctrl=500, sizes=sizes, n_genes=200)


def _pdex_pvalues(adata: ad.AnnData, conditions: list[str], genes: list[str]) -> np.ndarray:
    """pdex 0.3.0's p-values (as cell-eval 0.8.2 calls it), conditions × genes in the given order."""
    pdex = pytest.importorskip("pdex").pdex
    frame = pdex(adata, groupby="condition", mode="ref", reference="ctrl", threads=1, is_log1p=True).to_pandas()
    table = frame.pivot(index="target", columns="feature", values="p_value")
    return table.loc[conditions, genes].to_numpy()


def _de_sets(p: np.ndarray, fdr: float = 0.05) -> np.ndarray:
    return false_discovery_control(p, axis=1) < fdr


def _cells(adata: ad.AnnData, condition: str, gene: int) -> np.ndarray:
    """One gene's values in a condition's cells, as float64 (scipy computes in the inputs' precision)."""
    rows = np.flatnonzero(adata.obs["condition"].to_numpy() == condition)
    return np.asarray(adata.X[rows][:, gene].toarray(), dtype=np.float64).ravel()


@pytest.mark.parametrize("which", ["small", "medium"])
def test_pvalues_and_de_sets_equal_pdex(which, request):
    path, adata = request.getfixturevalue(which)
    res = rank_sum_test(path)
    ref = _pdex_pvalues(adata, res.conditions, res.genes)
    np.testing.assert_allclose(res.pvalue, ref, rtol=1e-10, atol=0)
    de = _de_sets(res.pvalue)
    assert de.sum() >= 10  # the comparison is not between empty sets
    np.testing.assert_array_equal(de, _de_sets(ref))


def test_pvalues_equal_scipy_mannwhitneyu(small):
    path, adata = small
    res = rank_sum_test(path)
    for i, condition in enumerate(res.conditions):
        for g in range(len(res.genes)):
            expected = mannwhitneyu(_cells(adata, condition, g), _cells(adata, "ctrl", g), method="asymptotic",
                                    use_continuity=True, alternative="two-sided")
            assert res.pvalue[i, g] == pytest.approx(expected.pvalue, rel=1e-10, abs=0), (condition, res.genes[g])


def test_conditions_genes_and_cell_counts(small):
    path, adata = small
    res = rank_sum_test(path)
    counts = adata.obs["condition"].value_counts()
    assert "ctrl" not in res.conditions and sorted(res.conditions) == sorted(c for c in counts.index if c != "ctrl")
    assert res.n_cells.tolist() == [int(counts[c]) for c in res.conditions]
    assert sorted(res.n_cells.tolist()) == sorted(SMALL_SIZES)
    assert res.genes == list(adata.var["gene_name"])
    assert res.pvalue.shape == res.statistic.shape == (len(res.conditions), len(res.genes))
    assert res.pvalue.dtype == res.statistic.dtype == np.float64


def test_all_tied_genes_have_p_one_and_statistic_zero(small):
    """A gene zero in every cell of both groups, or one value in every cell: no evidence (p = 1)."""
    path, _ = small
    res = rank_sum_test(path)
    for name in ("ALLZERO", "ALLSAME"):
        g = res.genes.index(name)
        assert (res.pvalue[:, g] == 1.0).all() and (res.statistic[:, g] == 0.0).all()


def test_tiny_groups_and_constant_groups(small):
    """Perturbations of 1, 2 and 3 cells and genes constant within one group are tested like any other."""
    path, adata = small
    res = rank_sum_test(path)
    tiny = [i for i, n in enumerate(res.n_cells) if n <= 3]
    assert sorted(res.n_cells[tiny].tolist()) == [1, 2, 3]
    assert np.isfinite(res.pvalue).all() and np.isfinite(res.statistic).all()
    assert ((res.pvalue > 0) & (res.pvalue <= 1)).all()
    for name in ("CTRLCONST", "PERTCONST"):
        g = res.genes.index(name)
        assert (res.pvalue[:, g] < 1).any()  # a constant group is not "all tied"
        for i in tiny:
            expected = mannwhitneyu(_cells(adata, res.conditions[i], g), _cells(adata, "ctrl", g), method="asymptotic")
            assert res.pvalue[i, g] == pytest.approx(expected.pvalue, rel=1e-10, abs=0)


def test_statistic_is_signed_standardised_u(small):
    """``statistic = (U₁ − n₁n₂/2) / σ``, U₁ the perturbation's U and σ the tie-corrected SD: positive when its cells
    are higher than the control cells."""
    path, adata = small
    res = rank_sum_test(path)
    for i, condition in enumerate(res.conditions):
        for g in range(len(res.genes)):
            x, y = _cells(adata, condition, g), _cells(adata, "ctrl", g)
            n1, n2 = len(x), len(y)
            n = n1 + n2
            u1 = mannwhitneyu(x, y, method="asymptotic").statistic
            _, ties = np.unique(np.concatenate([x, y]), return_counts=True)
            var = n1 * n2 / 12 * ((n + 1) - (ties**3 - ties).sum() / (n * (n - 1)))
            expected = (u1 - n1 * n2 / 2) / np.sqrt(var) if var > 0 else 0.0
            assert res.statistic[i, g] == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_statistic_sign_on_a_known_shift(tmp_path):
    rng = np.random.default_rng(3)
    conditions = _conditions(rng, 30, (10, 10))
    x = _tied_matrix(rng, conditions, 8)
    ctrl = conditions == "ctrl"
    x[:, 3] = np.where(ctrl, 0.5, 0)
    x[conditions == "P0+ctrl", 3] = 2.0  # P0 above the control cells, P1 below
    path = tmp_path / "shift.h5ad"
    write_h5ad(_adata(x, conditions), path)
    res = rank_sum_test(path)
    up, down = res.conditions.index("P0+ctrl"), res.conditions.index("P1+ctrl")
    assert res.statistic[up, 3] > 3 and res.statistic[down, 3] < -3
    assert res.pvalue[up, 3] == res.pvalue[down, 3] < 1e-3  # mirror images: the same two-sided p


def test_independent_of_chunk_size_and_memory_budget(medium, caplog):
    """Several passes over the file (a tiny budget: one perturbation per pass) give the one-pass result bit for bit,
    whatever the read chunk."""
    path, _ = medium
    ref = rank_sum_test(path)
    with caplog.at_level(logging.INFO, logger="lsftbench.evaluation.rank_sum"):
        for chunk_size, max_bytes in ((3, 1 << 30), (29, 1_500_000), (10_000, 1)):
            res = rank_sum_test(path, chunk_size=chunk_size, max_bytes=max_bytes)
            np.testing.assert_array_equal(res.pvalue, ref.pvalue)
            np.testing.assert_array_equal(res.statistic, ref.statistic)
    passes = sorted({int(r.getMessage().split(" pass")[0].rsplit(" ", 1)[1]) for r in caplog.records})
    assert len(passes) == 3 and passes[0] == 1 and passes[-1] == len(ref.conditions)  # one, a few, one per perturbation


def test_independent_of_block_sizes(medium, monkeypatch):
    """Tiny blocks of sorted keys (many per gene, split at gene ends; genes without a nonzero in between) and of
    finished (condition, gene) pairs give the same result bit for bit."""
    from lsftbench.evaluation import rank_sum

    path, _ = medium
    ref = rank_sum_test(path)
    monkeypatch.setattr(rank_sum, "_BLOCK", 37)
    monkeypatch.setattr(rank_sum, "_PAIRS", 50)
    for max_bytes in (1 << 30, 1):
        res = rank_sum_test(path, max_bytes=max_bytes)
        np.testing.assert_array_equal(res.pvalue, ref.pvalue)
        np.testing.assert_array_equal(res.statistic, ref.statistic)


def test_explicit_stored_zeros_are_zeros(small, tmp_path):
    path, adata = small
    x = adata.X.tocoo()
    rng = np.random.default_rng(5)
    zero_rows, zero_cols = np.nonzero(adata.X.toarray() == 0)
    pick = rng.choice(len(zero_rows), size=len(zero_rows) // 3, replace=False)
    stored = sp.csr_matrix(
        (np.r_[x.data, np.where(np.arange(len(pick)) % 2, 0.0, -0.0).astype(np.float32)],
         (np.r_[x.row, zero_rows[pick]], np.r_[x.col, zero_cols[pick]])),
        shape=x.shape,
    )
    stored.sum_duplicates()  # canonical CSR; the explicit zeros stay stored
    assert (stored.data == 0).sum() == len(pick)
    with_zeros = tmp_path / "zeros.h5ad"
    write_h5ad(_adata(stored, adata.obs["condition"].to_numpy()), with_zeros)
    with h5py.File(with_zeros, "r") as f:
        assert (f["X/data"][...] == 0).sum() == len(pick)
    ref, res = rank_sum_test(path), rank_sum_test(with_zeros, chunk_size=13)
    np.testing.assert_array_equal(res.pvalue, ref.pvalue)
    np.testing.assert_array_equal(res.statistic, ref.statistic)


def test_dense_and_float64_files_give_the_same_result(small, tmp_path):
    path, adata = small
    ref = rank_sum_test(path)
    conditions = adata.obs["condition"].to_numpy()
    for name, x in (("dense", adata.X.toarray()), ("float64", adata.X.astype(np.float64))):
        other = _adata(x, conditions)
        if name == "dense":
            other.X = x
        write_h5ad(other, tmp_path / f"{name}.h5ad")
        res = rank_sum_test(tmp_path / f"{name}.h5ad", chunk_size=17, max_bytes=50_000)
        np.testing.assert_array_equal(res.pvalue, ref.pvalue)
        np.testing.assert_array_equal(res.statistic, ref.statistic)


@pytest.mark.parametrize("bad, match", [(-0.5, "negative values"), (np.nan, "NaN or infinite")])
def test_bad_values_are_refused(small, tmp_path, bad, match):
    _, adata = small
    x = adata.X.toarray()
    x[7, 4] = bad
    path = tmp_path / "bad.h5ad"
    write_h5ad(_adata(x, adata.obs["condition"].to_numpy()), path)
    with pytest.raises(InputDataError, match=match):
        rank_sum_test(path)


def test_the_de_step_with_the_rank_sum_test(small, tmp_path):
    """``metrics.de_test: wilcoxon``: the DE results of the rule differential_expression are pdex's p-values in the
    pseudobulk's condition order, BH within each perturbation, and say which test they are (tables name it)."""
    from lsftbench.data.pseudobulk import pseudobulk
    from lsftbench.evaluation.de import DEResults, differential_expression_from_files
    from lsftbench.report.notes import de_note

    path, adata = small
    pb = pseudobulk(path)
    write_h5ad(pb, tmp_path / "pb.h5ad")
    de = differential_expression_from_files(tmp_path / "pb.h5ad", path, "wilcoxon", chunk_size=7)
    conditions = [c for c in pb.obs_names if c != "ctrl"]
    assert de.test == "wilcoxon" and de.conditions == conditions and de.genes == list(pb.var_names)
    streamed = rank_sum_test(path)  # pdex's p-values (test_pvalues_and_de_sets_equal_pdex), in its own order
    rows = [streamed.conditions.index(c) for c in conditions]
    np.testing.assert_array_equal(de.pvalue, streamed.pvalue[rows])
    np.testing.assert_array_equal(de.statistic, streamed.statistic[rows])
    for row, gene in ((0, 0), (len(conditions) - 1, 5)):  # and scipy's on the cells
        expected = mannwhitneyu(_cells(adata, conditions[row], gene), _cells(adata, "ctrl", gene),
                                method="asymptotic", use_continuity=True, alternative="two-sided").pvalue
        assert de.pvalue[row, gene] == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(de.qvalue, false_discovery_control(de.pvalue, axis=1), rtol=1e-12)
    de.save(tmp_path / "de.h5")
    assert DEResults.load(tmp_path / "de.h5").test == "wilcoxon"
    welch = differential_expression_from_files(tmp_path / "pb.h5ad", path, "welch")
    assert welch.test == "welch" and not np.allclose(welch.pvalue, de.pvalue)
    rows = pd.DataFrame({"seed": [1], "baseline": ["b"], "top_pct": [1.0], "condition": ["P0+ctrl"],
                         "in_common_test_set": [True]})
    note = de_note(rows, "small",
                   de_test="wilcoxon")
    assert "Wilcoxon rank-sum test" in note and "metrics.de_test: wilcoxon" in note
    with pytest.raises(ValueError, match="test must be one of"):
        differential_expression_from_files(tmp_path / "pb.h5ad", path, "ttest")
