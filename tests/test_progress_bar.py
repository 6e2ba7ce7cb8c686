"""Progress bar: null methods, idealized baseline, WAP/BAP and % of the gap closed (SPEC 7, seed 003)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from lsftbench.embeddings.build import build_embedding
from lsftbench.evaluation.metrics import perturbation_metrics, rank_metrics
from lsftbench.evaluation.noise_ceiling import noise_ceiling
from lsftbench.evaluation.progress_bar import (
    CHEATER_METHODS,
    IDEALIZED,
    NO_CHANGE,
    NOISE_CEILING,
    NULL_METHODS,
    PROGRESS_COLUMNS,
    RANDOM_PERT,
    TRAIN_MEAN,
    idealized_embedding,
    method_scores,
    pool_progress_bars,
    progress_bar_table,
    train_mean_delta,
)
from lsftbench.model.global_fit import global_predictions
from lsftbench.model.problem import make_problem

SELFTRAINED = {"gene": {"type": "training_pca"}, "pert": {"type": "training_pca"}}


def _frame(method, conditions, **metrics):
    return pd.DataFrame({"method": method, "condition": conditions, **metrics})


def _baseline(**metrics):
    return pd.DataFrame({"Baseline": ["b"], "Top %": ["global"], "Method": ["global"], **{k: [v] for k, v in metrics.items()}})


CONDS = ["t1+ctrl", "t2+ctrl"]


def _known_methods():
    """Means over CONDS — r: train mean 0.2, random 0.1, no change NaN, idealized 0.9; L2: 10, 11, 12, 2."""
    return pd.concat([
        _frame(TRAIN_MEAN, CONDS, pearson_r=[0.1, 0.3], l2=[11.0, 9.0]),
        _frame(NO_CHANGE, CONDS, pearson_r=[np.nan, np.nan], l2=[12.0, 12.0]),
        _frame(RANDOM_PERT, CONDS, pearson_r=[0.0, 0.2], l2=[10.0, 12.0]),
        _frame(IDEALIZED, CONDS, pearson_r=[0.95, 0.85], l2=[2.0, 2.0]),
    ])


def test_gap_closed_known_answers():
    ceiling = pd.DataFrame({"condition": CONDS, "pearson_r": [0.8, 0.8], "l2": [1.0, 1.0]})
    table = progress_bar_table(_baseline(pearson_r=0.5, l2=6.0), _known_methods(), ceiling)
    assert list(table.columns) == PROGRESS_COLUMNS
    r, l2 = table.set_index("Metric").loc["Pearson r"], table.set_index("Metric").loc["L2"]
    # Pearson r: WAP = best null (train mean 0.2; no change is NaN and does not compete),
    # BAP = worse cheater (ceiling 0.8 < idealized 0.9): (0.5 − 0.2) / (0.8 − 0.2) = 50 %
    assert (r["WAP"], r["WAP method"], r["BAP"], r["BAP method"]) == (pytest.approx(0.2), TRAIN_MEAN, 0.8, NOISE_CEILING)
    assert r["% of gap closed"] == pytest.approx(50.0)
    # L2: WAP = lowest null L2 (train mean 10, tie with random: first in order), BAP = higher cheater L2 (idealized 2)
    assert (l2["WAP"], l2["WAP method"], l2["BAP"], l2["BAP method"]) == (10.0, TRAIN_MEAN, 2.0, IDEALIZED)
    assert l2["% of gap closed"] == pytest.approx(100 * (10 - 6) / (10 - 2))


def test_score_at_wap_is_zero_and_a_gap_that_is_not_positive_is_nan():
    table = progress_bar_table(_baseline(pearson_r=0.2, l2=10.0), _known_methods(), None).set_index("Metric")
    assert table.loc["Pearson r", "% of gap closed"] == pytest.approx(0.0)
    assert table.loc["L2", "% of gap closed"] == pytest.approx(0.0)
    assert table.loc["Pearson r", "BAP method"] == IDEALIZED  # without a ceiling the idealized bound alone
    worse = _known_methods().replace({IDEALIZED: "x"})
    worse = pd.concat([worse[worse.method != "x"], _frame(IDEALIZED, CONDS, pearson_r=[0.1, 0.1], l2=[20.0, 20.0])])
    table = progress_bar_table(_baseline(pearson_r=0.5, l2=6.0), worse, None)
    assert table["% of gap closed"].isna().all()


def test_perfect_predictions_rank_zero_and_close_the_whole_gap():
    obs = np.random.default_rng(0).normal(size=(40, 6))
    conds = [f"g{i}+ctrl" for i in range(6)]
    top = np.arange(20)
    perfect = perturbation_metrics(obs.copy(), obs, top)
    assert (rank_metrics(obs.copy(), obs)["rank"] == 0).all()
    nulls = [(TRAIN_MEAN, np.repeat(obs.mean(1, keepdims=True), 6, axis=1)), (NO_CHANGE, np.zeros_like(obs))]
    frames = [_frame(m, conds, **perturbation_metrics(p, obs, top)[["pearson_r", "l2"]]) for m, p in nulls]
    frames.append(_frame(IDEALIZED, conds, **perfect[["pearson_r", "l2"]]))
    ceiling = pd.DataFrame({"condition": conds, **perfect[["pearson_r", "l2"]]})  # e.g. one cell per condition
    table = progress_bar_table(_baseline(**perfect[["pearson_r", "l2"]].mean()), pd.concat(frames), ceiling)
    np.testing.assert_allclose(table["% of gap closed"], [100.0, 100.0])


def test_missing_common_condition_is_an_error():
    with pytest.raises(ValueError, match="no score"):
        progress_bar_table(_baseline(pearson_r=0.5, l2=6.0), _known_methods(), None, conditions=[*CONDS, "t3+ctrl"])


def test_null_methods_on_a_split(small_pb, small_split):
    scores = method_scores(small_pb, small_split, dim=10, ridge=0.1, random_seed=1, top_n=50)
    assert list(pd.unique(scores["method"])) == [*NULL_METHODS, IDEALIZED]
    by = {m: g.set_index("condition") for m, g in scores.groupby("method")}
    test = small_split["test"]
    x = np.asarray(small_pb.X, dtype=np.float64)
    delta = pd.DataFrame(x - x[0], index=small_pb.obs_names, columns=small_pb.var_names)
    m = delta.loc[[c for c in small_split["train"] if c != "ctrl"]].mean().to_numpy()
    np.testing.assert_allclose(train_mean_delta(small_pb, small_split), m)
    # no change: r undefined, L2 = ‖Δ‖; train mean: L2 = ‖Δ − m‖, centred r undefined
    assert by[NO_CHANGE]["pearson_r"].isna().all()
    np.testing.assert_allclose(by[NO_CHANGE].loc[test, "l2"], np.linalg.norm(delta.loc[test], axis=1))
    np.testing.assert_allclose(by[TRAIN_MEAN].loc[test, "l2"], np.linalg.norm(delta.loc[test] - m, axis=1))
    assert by[TRAIN_MEAN]["centered_pearson_r"].isna().all()
    # random perturbation embedding = baseline lpm_randomPertEmb with the same seed
    spec = {"gene": {"type": "training_pca"}, "pert": {"type": "random", "seed": 1}}
    problem = make_problem(small_pb, small_split, build_embedding(spec, small_pb, small_split, 10, dataset="d"), 50)
    expected = perturbation_metrics(global_predictions(problem, 0.1), problem.y[:, problem.col(problem.test)], problem.top_idx)
    np.testing.assert_allclose(by[RANDOM_PERT].loc[problem.test, ["pearson_r", "l2"]], expected[["pearson_r", "l2"]])
    table = progress_bar_table(_baseline(pearson_r=0.3, l2=1.0), scores, None, conditions=problem.test)
    assert table.set_index("Metric").loc["Pearson r", "WAP method"] != NO_CHANGE


def _low_rank_pseudobulk(rank=3, n_genes=80, n_perts=60, seed=0):
    """Mean expression base + U v_c: Δ has rank ``rank`` exactly (the 'training-rank' case)."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n_genes)]
    conds = ["ctrl"] + [f"G{i}+ctrl" for i in range(n_perts)]
    base = rng.uniform(2, 5, n_genes)
    delta = rng.normal(size=(n_genes, rank)) @ rng.normal(size=(rank, n_perts))
    x = np.vstack([base, (base[:, None] + delta).T])
    pb = ad.AnnData(X=x, obs=pd.DataFrame(index=conds), var=pd.DataFrame(index=genes))
    split = {"train": conds[:46], "val": [], "test": conds[46:]}
    return pb, split


def test_idealized_baseline_is_at_least_as_good_as_selftrained_on_training_rank_data():
    pb, split = _low_rank_pseudobulk()
    scores = method_scores(pb, split, dim=10, ridge=0.1, top_n=40)
    ideal = scores[scores.method == IDEALIZED].set_index("condition")
    problem = make_problem(pb, split, build_embedding(SELFTRAINED, pb, split, 10, dataset="d"), 40)
    selftrained = perturbation_metrics(global_predictions(problem, 0.1), problem.y[:, problem.col(problem.test)], problem.top_idx)
    assert list(ideal.index) == problem.test
    assert ideal["pearson_r"].mean() >= selftrained["pearson_r"].mean()
    assert ideal["l2"].mean() <= selftrained["l2"].mean()
    # the test responses lie in the span of the components; what is left is the ridge shrinkage and
    # the offset between the training centre and the all-condition centring of the PCA
    assert ideal["pearson_r"].mean() > 0.99 and ideal["pearson_r"].min() > 0.98


def test_idealized_embedding_uses_test_columns():
    pb, split = _low_rank_pseudobulk()
    emb = idealized_embedding(pb, split, 10)
    assert list(emb.conditions) == split["train"] + split["test"] and emb.info["uses_test_data"]
    rows = idealized_embedding(pb, split, 10, pert="gene_rows")
    np.testing.assert_allclose(rows.B[:, rows.conditions.get_loc("G50+ctrl")], rows.A[50])
    with pytest.raises(ValueError, match="pert"):
        idealized_embedding(pb, split, 10, pert="other")


def test_end_to_end_with_the_noise_ceiling(small_h5ad, small_pb, small_split):
    m = train_mean_delta(small_pb, small_split)
    scores = method_scores(small_pb, small_split, top_n=50)
    ceiling = noise_ceiling(small_h5ad, small_pb, replicates=8, seed=1, conditions=small_split["test"], top_n=50,
                            centers={"s": m})
    problem = make_problem(small_pb, small_split, build_embedding(SELFTRAINED, small_pb, small_split, 10, dataset="d"), 50)
    assert problem.genes.equals(small_pb.var_names)
    pred, obs = global_predictions(problem, 0.1), problem.y[:, problem.col(problem.test)]
    base = _baseline(**perturbation_metrics(pred, obs, problem.top_idx, m).mean())
    metrics = ("pearson_r", "l2", "centered_pearson_r")
    table = progress_bar_table(base, scores, ceiling, conditions=problem.test, metrics=metrics,
                               ceiling_columns={"centered_pearson_r": "centered_pearson_r_s"})
    assert list(table["Metric"]) == ["Pearson r", "L2", "Centred Pearson r"]
    assert set(table["WAP method"]) <= set(NULL_METHODS) and set(table["BAP method"]) <= set(CHEATER_METHODS)
    ceil = ceiling.set_index("condition").loc[problem.test]
    ideal = scores[scores.method == IDEALIZED].set_index("condition").loc[problem.test]
    bap = table.set_index("Metric")["BAP"]
    assert bap["Pearson r"] == pytest.approx(min(ceil["pearson_r"].mean(), ideal["pearson_r"].mean()))
    assert bap["L2"] == pytest.approx(max(ceil["l2"].mean(), ideal["l2"].mean()))
    assert bap["Centred Pearson r"] == pytest.approx(
        min(ceil["centered_pearson_r_s"].mean(), ideal["centered_pearson_r"].mean()))


def test_pool_over_seeds():
    methods = _known_methods()
    t1 = progress_bar_table(_baseline(pearson_r=0.5, l2=6.0), methods, None)
    other = methods.assign(pearson_r=methods.pearson_r.where(methods.method != TRAIN_MEAN, 0.0))
    t2 = progress_bar_table(_baseline(pearson_r=0.3, l2=4.0), other, None)
    pooled = pool_progress_bars([t1, t2]).set_index("Metric")
    r = pooled.loc["Pearson r"]
    assert r["Score"] == pytest.approx(0.4) and r["WAP"] == pytest.approx((0.2 + 0.1) / 2)
    assert r["WAP method"] == f"{TRAIN_MEAN} / {RANDOM_PERT}" and r["Seeds"] == 2
    # SPEC 7.1: the pooled % of gap closed is the mean of the per-seed values, the numbers its SD is over
    per_seed = [t.set_index("Metric").loc["Pearson r", "% of gap closed"] for t in (t1, t2)]
    assert per_seed == pytest.approx([100 * (0.5 - 0.2) / (0.9 - 0.2), 100 * (0.3 - 0.1) / (0.9 - 0.1)])
    assert r["% of gap closed"] == pytest.approx(np.mean(per_seed))
    assert r["% of gap closed"] != pytest.approx(100 * (0.4 - 0.15) / (0.9 - 0.15))  # not a ratio of pooled means
    assert r["% of gap closed SD"] == pytest.approx(np.std(per_seed, ddof=1))
    assert r["Score SD"] == pytest.approx(np.std([0.5, 0.3], ddof=1))
    l2_per_seed = [t.set_index("Metric").loc["L2", "% of gap closed"] for t in (t1, t2)]
    assert pooled.loc["L2", "% of gap closed"] == pytest.approx(np.mean(l2_per_seed))
