"""The metrics as the field computes them (SPEC 7, 7.2): parity with Arc's cell-eval 0.8.2 and GEARS 0.1.2
(their own code, installed as test extras), and known answers for the DE statistics.

cell-eval: ``pearson_delta``, ``mae``, ``mse`` and ``discrimination_score`` with L1, L2 and cosine
distances, with and without leaving the target gene out, called on cell-eval's own
``PerturbationAnndataPair`` built from pseudobulk rows that share one control row (so its predicted
change is ``x̂ − x̄_ctrl``, ours). GEARS: ``non_dropout_analysis`` of ``gears/inference.py`` (its
``pearson_delta_top20_de_non_dropout`` and ``mse_top20_de_non_dropout`` are what GEARS and scGPT users
quote as pearson_de_delta and mse_de) on an h5ad whose ``uns["top_non_dropout_de_20"]`` GEARS's own
``get_DE_genes`` / ``get_dropout_non_zero_genes`` wrote.
"""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from gears_reference import gears_modules
from scipy import stats

from lsftbench.data.conditions import target_positions
from lsftbench.data.pseudobulk import pseudobulk
from lsftbench.evaluation.de import (
    DEResults,
    de_metrics,
    differential_expression,
    differential_expression_from_files,
    read_gears_de_genes,
    welch_pvalues,
)
from lsftbench.evaluation.metrics import discrimination_scores, metric_columns, rank_metrics
from lsftbench.io import write_h5ad
from lsftbench.labels import Labels

CTRL_LABEL = "non-targeting"


@pytest.fixture(scope="module")
def pseudobulk_rows():
    """12 perturbations × 80 genes of observed and predicted means around one control row; perturbation 3's
    prediction is close to perturbation 4's observation (a discrimination miss), no two distances tie."""
    rng = np.random.default_rng(1)
    n_perts, n_genes = 12, 80
    genes = [f"G{i:02d}" for i in range(n_genes)]
    perts = genes[:n_perts]  # each perturbation's label is its target gene, as cell-eval matches them
    ctrl = rng.uniform(1, 3, n_genes)
    delta = rng.normal(0, 0.5, (n_perts, n_genes))
    delta[np.arange(n_perts), np.arange(n_perts)] = -1.5  # the knock-down: worth leaving out
    pred = 0.6 * delta + rng.normal(0, 0.4, (n_perts, n_genes))
    pred[3] = delta[4] + rng.normal(0, 0.05, n_genes)
    return {"genes": genes, "perts": perts, "ctrl": ctrl, "obs": ctrl + delta, "pred": ctrl + pred}


def _cell_eval_pair(rows):
    from cell_eval import PerturbationAnndataPair

    def adata(x):
        obs = pd.DataFrame({"target": [*rows["perts"], CTRL_LABEL]}, index=[f"r{i}" for i in range(len(x) + 1)])
        return ad.AnnData(X=np.vstack([x, rows["ctrl"][None]]), obs=obs, var=pd.DataFrame(index=rows["genes"]))

    return PerturbationAnndataPair(real=adata(rows["obs"]), pred=adata(rows["pred"]), pert_col="target",
                                   control_pert=CTRL_LABEL)


def _in_order(values: dict, perts: list[str]) -> np.ndarray:
    return np.array([values[p] for p in perts])


def test_per_perturbation_metrics_equal_cell_eval(pseudobulk_rows):
    from cell_eval.metrics import mae, mse, pearson_delta

    rows = pseudobulk_rows
    pair = _cell_eval_pair(rows)
    pred, obs = (rows["pred"] - rows["ctrl"]).T, (rows["obs"] - rows["ctrl"]).T
    ours = metric_columns(pred, obs, np.arange(len(rows["genes"])))
    n_genes = len(rows["genes"])
    np.testing.assert_allclose(ours["pearson_r"], _in_order(pearson_delta(pair), rows["perts"]), rtol=0, atol=1e-14)
    np.testing.assert_allclose(ours["mae"], _in_order(mae(pair), rows["perts"]), rtol=0, atol=1e-15)
    np.testing.assert_allclose(ours["l2"] ** 2 / n_genes, _in_order(mse(pair), rows["perts"]), rtol=1e-13)


@pytest.mark.parametrize("exclude", [True, False], ids=["target-excluded", "target-included"])
@pytest.mark.parametrize("distance", ["l1", "l2", "cosine"])
def test_discrimination_score_equals_cell_eval(pseudobulk_rows, distance, exclude):
    from cell_eval.metrics import discrimination_score

    rows = pseudobulk_rows
    reference = _in_order(discrimination_score(_cell_eval_pair(rows), metric=distance, exclude_target_gene=exclude),
                          rows["perts"])
    targets = target_positions([f"{p}+ctrl" for p in rows["perts"]], Labels(rows["genes"]))
    pred, obs = (rows["pred"] - rows["ctrl"]).T, (rows["obs"] - rows["ctrl"]).T
    ours = discrimination_scores(pred, obs, exclude=targets if exclude else None, distances=(distance,))
    np.testing.assert_array_equal(ours[f"ds_{distance}"], reference)
    assert reference[3] < 1 and reference.min() >= 1 / len(rows["perts"])  # the confusable one is not perfect


def test_target_gene_exclusion_equals_leaving_the_gene_out(pseudobulk_rows):
    """metrics.exclude_target_gene: each perturbation's numbers are those computed without its target's row."""
    rows = pseudobulk_rows
    pred, obs = (rows["pred"] - rows["ctrl"]).T, (rows["obs"] - rows["ctrl"]).T
    n_genes = len(rows["genes"])
    targets = target_positions([f"{p}+ctrl" for p in rows["perts"]], Labels(rows["genes"]))
    m = np.random.default_rng(2).normal(0, 0.1, n_genes)
    top = np.arange(0, n_genes, 2)
    excluded = metric_columns(pred, obs, top, m, exclude=targets)
    included = metric_columns(pred, obs, top, m)
    for i, gene in enumerate(targets[:, 0]):
        kept = np.flatnonzero(np.arange(n_genes) != gene)
        alone = metric_columns(pred[kept][:, [i]], obs[kept][:, [i]], np.flatnonzero(np.isin(kept, top)), m[kept])
        for name, values in excluded.items():
            assert values[i] == pytest.approx(alone[name][0], rel=1e-12), name
    # the knock-down row dominates: leaving it out changes every perturbation's L2 and MAE
    assert (excluded["l2"] < included["l2"]).mean() > 0.5 and not np.allclose(excluded["mae"], included["mae"])


@pytest.mark.parametrize("distance", ["l2", "cosine"])
def test_ranks_with_the_target_left_out_follow_the_definition(pseudobulk_rows, distance):
    rows = pseudobulk_rows
    pred, obs = (rows["pred"] - rows["ctrl"]).T, (rows["obs"] - rows["ctrl"]).T
    targets = target_positions([f"{p}+ctrl" for p in rows["perts"]], Labels(rows["genes"]))
    got = rank_metrics(pred, obs, distance=distance, exclude=targets, block_columns=5)

    def dist(a, b, keep):
        a, b = a[keep], b[keep]
        return np.sum((a - b) ** 2) if distance == "l2" else 1 - a @ b / np.linalg.norm(a) / np.linalg.norm(b)

    p = pred.shape[1]
    for i in range(p):
        keep = np.arange(pred.shape[0]) != targets[i, 0]
        own = dist(pred[:, i], obs[:, i], keep)
        rank = np.mean([dist(pred[:, j], obs[:, i], keep) <= own + 1e-12 for j in range(p) if j != i])
        transposed = np.mean([dist(pred[:, i], obs[:, j], keep) <= own + 1e-12 for j in range(p) if j != i])
        assert got["rank"][i] == pytest.approx(rank) and got["rank_transposed"][i] == pytest.approx(transposed)


# ---------------------------------------------------------------------------------------------------
# DE genes from the cells (SPEC 7.2)


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    """A GEARS-format h5ad: 400 control cells, perturbations with and without an effect, one gene zero
    everywhere, one constant in the cells of G1 and ctrl; GEARS's own DE genes in ``uns``."""
    rng = np.random.default_rng(3)
    n_genes = 60
    ids = [f"ENSG{i:011d}" for i in range(n_genes)]
    symbols = [f"G{i}" for i in range(n_genes)]
    base = rng.uniform(0.5, 2.0, n_genes)
    groups = {"ctrl": 400, "G1+ctrl": 40, "G2+ctrl": 35, "G3+ctrl": 30, "G4+G5": 30}
    blocks, labels = [], []
    for condition, n in groups.items():
        mu = base.copy()
        if condition != "ctrl":
            k = int(condition[1])
            mu[5 * k: 5 * k + 25] *= rng.uniform(1.8, 3.0, 25)  # a strong effect on 25 genes
            mu[k] *= 0.1
        counts = rng.poisson(mu * 6, size=(n, n_genes)).astype(np.float64)
        blocks.append(counts)
        labels += [condition] * n
    x = np.log1p(np.vstack(blocks))
    x[:, 59] = 0.0  # zero variance in every group
    adata = ad.AnnData(
        X=sp.csr_matrix(x),
        obs=pd.DataFrame({"condition": labels, "cell_type": "K562"}, index=[f"c{i}" for i in range(len(labels))]),
        var=pd.DataFrame({"gene_name": symbols}, index=ids),
    )
    with gears_modules("data_utils") as modules, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        du = modules["data_utils"]
        adata = du.get_DE_genes(adata, skip_calc_de=False)
        adata = du.get_dropout_non_zero_genes(adata)
    path = tmp_path_factory.mktemp("de") / "perturb_processed.h5ad"
    write_h5ad(adata, path)
    pb_path = path.with_name("pseudobulk.h5ad")
    write_h5ad(pseudobulk(path), pb_path)
    return {"path": path, "pb_path": pb_path, "adata": adata, "x": x, "labels": np.array(labels), "symbols": symbols}


def test_welch_p_values_equal_scipy_on_the_cells(cells):
    """The t-test from the pseudobulk pass's means and variances equals ``scipy.stats.ttest_ind(equal_var=False)``
    on the cells themselves; a gene with zero variance in both groups has p = 1."""
    pb = ad.read_h5ad(cells["pb_path"])
    conditions = list(pb.obs_names)
    t, p = welch_pvalues(pb.X, pb.layers["variance"], pb.obs["n_cells"].to_numpy(), conditions.index("ctrl"))
    ctrl_cells = cells["x"][cells["labels"] == "ctrl"]
    for i, condition in enumerate(conditions):
        if condition == "ctrl":
            assert np.isnan(p[i]).all()
            continue
        ref = stats.ttest_ind(cells["x"][cells["labels"] == condition], ctrl_cells, equal_var=False)
        assert p[i, 59] == 1.0 and t[i, 59] == 0.0 and np.isnan(ref.pvalue[59])
        np.testing.assert_allclose(p[i, :59], ref.pvalue[:59], rtol=1e-9, atol=1e-300)
        np.testing.assert_allclose(t[i, :59], ref.statistic[:59], rtol=1e-9)


def test_benjamini_hochberg_within_each_perturbation(cells):
    """A perturbation's q-values (and so its DE set) are those of its own p-values alone."""
    pb = ad.read_h5ad(cells["pb_path"])
    conditions = list(pb.obs_names)
    de = differential_expression(pb.X, pb.layers["variance"], pb.obs["n_cells"].to_numpy(), conditions,
                                 list(pb.var_names))
    _, p = welch_pvalues(pb.X, pb.layers["variance"], pb.obs["n_cells"].to_numpy(), conditions.index("ctrl"))
    for row, condition in enumerate(de.conditions):
        np.testing.assert_allclose(de.qvalue[row], stats.false_discovery_control(p[conditions.index(condition)]))
    alone = differential_expression(pb.X[[0, 2]], pb.layers["variance"][[0, 2]], pb.obs["n_cells"].to_numpy()[[0, 2]],
                                    [conditions[0], conditions[2]], list(pb.var_names))
    np.testing.assert_array_equal(alone.qvalue[0], de.qvalue[de.conditions.index(conditions[2])])
    assert (de.de_sets(0.05).sum(axis=1) >= 20).all()  # 25 genes with a strong effect


def test_observed_change_as_prediction_scores_perfectly(cells, tmp_path):
    """The observed Δ as the prediction: DE overlap, top-N overlaps, direction and Spearman 1; discrimination 1.

    The DE overlap ranks the predicted genes by |Δ̂|: the observed Δ scores 1 when the DE set is the genes of
    largest change, as here, where 25 genes change strongly and the rest not at all (at q < 0.001 no gene
    without an effect is called)."""
    de = differential_expression_from_files(cells["pb_path"], cells["path"])
    de.save(tmp_path / "de.h5")
    de = DEResults.load(tmp_path / "de.h5", conditions=de.conditions)
    pb = ad.read_h5ad(cells["pb_path"])
    delta = (pb[de.conditions].X - pb["ctrl"].X).T
    got = de_metrics(delta, delta, de, fdr=1e-3)
    for name in ("de_overlap", "de_direction", "de_spearman", "pearson_de_delta"):
        np.testing.assert_allclose(got[name], 1.0, err_msg=name)
    np.testing.assert_array_equal(got["mse_de"], 0.0)
    # top-N: the N DE genes of smallest p; a prediction that orders the genes as their p-values do scores 1
    by_p = np.zeros_like(delta)
    for i, order in enumerate(de.order):
        order = order[order >= 0]
        by_p[order, i] = np.sign(delta[order, i]) * np.arange(len(order), 0, -1)
    ranked = de_metrics(by_p, delta, de, fdr=1e-3)
    for n in (20, 50, 100):
        np.testing.assert_array_equal(ranked[f"de_top{n}"], 1.0)
        n_eff = np.minimum(n, got["n_de"])
        assert (got[f"de_top{n}"] * n_eff == np.round(got[f"de_top{n}"] * n_eff)).all()  # a count of genes
    for values in discrimination_scores(delta, delta).values():
        np.testing.assert_array_equal(values, 1.0)
    shuffled = de_metrics(delta[:, ::-1], delta, de, fdr=1e-3)
    assert (shuffled["de_overlap"] < 1).all()


def test_gears_de_genes_are_read_as_gears_writes_them(cells):
    genes = read_gears_de_genes(cells["path"])
    uns = cells["adata"].uns["top_non_dropout_de_20"]
    symbol_of = dict(zip(cells["adata"].var_names, cells["symbols"], strict=True))
    assert set(genes) == {"G1+ctrl", "G2+ctrl", "G3+ctrl", "G4+G5"}
    for condition, symbols in genes.items():
        assert symbols == [symbol_of[g] for g in uns[f"K562_{condition}_1+1"]]
    plain = cells["path"].with_name("plain.h5ad")
    a = ad.read_h5ad(cells["path"])
    a.uns = {}
    write_h5ad(a, plain)
    assert read_gears_de_genes(plain) is None
    assert differential_expression_from_files(cells["pb_path"], plain).gears_source == "smallest p"


def test_gears_de_metrics_equal_gears_own_code(cells):
    """pearson_de_delta and mse_de over GEARS's 20 non-dropout DE genes equal GEARS 0.1.2's non_dropout_analysis
    (``pearson_delta_top20_de_non_dropout``, ``mse_top20_de_non_dropout``) on the same predicted means."""
    adata = cells["adata"]
    de = differential_expression_from_files(cells["pb_path"], cells["path"])
    assert de.gears_source == "uns"
    pb = ad.read_h5ad(cells["pb_path"])
    tests = de.conditions
    ctrl = np.asarray(adata[adata.obs["condition"] == "ctrl"].X.mean(axis=0)).ravel()  # GEARS's control mean
    observed = np.vstack([pb[c].X.ravel() for c in tests])
    rng = np.random.default_rng(4)
    predicted = observed + rng.normal(0, 0.3, observed.shape)
    # GEARS averages its per-cell rows per perturbation: two rows each, jittered around the means
    jitter = rng.normal(0, 0.1, observed.shape)
    result = {
        "pert_cat": np.repeat(tests, 2),
        "pred": np.repeat(predicted, 2, axis=0) + np.repeat(jitter, 2, axis=0) * np.tile([1, -1], len(tests))[:, None],
        "truth": np.repeat(observed, 2, axis=0) + np.repeat(jitter, 2, axis=0) * np.tile([-1, 1], len(tests))[:, None],
    }
    with gears_modules("inference") as modules, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = modules["inference"].non_dropout_analysis(adata, result)
    ours = de_metrics((predicted - ctrl).T, (observed - ctrl).T, de)
    for i, condition in enumerate(tests):
        assert ours["pearson_de_delta"][i] == pytest.approx(
            reference[condition]["pearson_delta_top20_de_non_dropout"], rel=1e-10)
        assert ours["mse_de"][i] == pytest.approx(reference[condition]["mse_top20_de_non_dropout"], rel=1e-10)
