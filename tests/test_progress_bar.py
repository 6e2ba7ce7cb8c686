"""Progress bar: null methods, idealized baseline, WAP/BAP and % of the gap closed (SPEC 7, seed 003).

The tables take a comparison frame (one row per seed, method and test perturbation, every method on one gene
set, with its ``kind``); here the frames are built by hand (known answers) or from :func:`null_predictions`
scored with :func:`score_on_genes` (the report stage's scoring).
"""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from lsftbench.embeddings.build import build_embedding
from lsftbench.evaluation.comparison import ComparisonSettings, GeneReference, score_on_genes
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
    NullPredictions,
    gap_closed,
    idealized_embedding,
    null_predictions,
    pool_progress_bars,
    progress_bar_table,
    train_mean_delta,
)
from lsftbench.labels import Labels
from lsftbench.model.global_fit import global_predictions
from lsftbench.model.problem import make_problem

SELFTRAINED = {"model": "ridge", "gene": {"type": "training_pca"}, "pert": {"type": "training_pca"}}
RANDOM_PERT_SPEC = {"model": "ridge", "gene": {"type": "training_pca"}, "pert": {"type": "random", "seed": 1}}
GLOBAL = "b · global fit"
KIND = {**{m: "null method" for m in NULL_METHODS}, IDEALIZED: "uses test data"}


def _rows(method, conditions, kind=None, baseline="", top_pct=np.nan, seed=1, **metrics):
    """A method's rows of a comparison frame."""
    return pd.DataFrame({"seed": seed, "method": method, "kind": kind or KIND[method], "baseline": baseline,
                         "top_pct": float(top_pct), "condition": list(conditions),
                         **{k: np.asarray(v, dtype=np.float64) for k, v in metrics.items()}})


def _global(conditions, baseline="b", seed=1, **metrics):
    return _rows(f"{baseline} · global fit", conditions, "global fit", baseline, seed=seed, **metrics)


CONDS = ["t1+ctrl", "t2+ctrl"]


def _known_bounds(seed=1):
    """Means over CONDS — r: train mean 0.2, random 0.1, no change NaN, idealized 0.9; L2: 10, 11, 12, 2."""
    return pd.concat([
        _rows(TRAIN_MEAN, CONDS, seed=seed, pearson_r=[0.1, 0.3], l2=[11.0, 9.0]),
        _rows(NO_CHANGE, CONDS, seed=seed, pearson_r=[np.nan, np.nan], l2=[12.0, 12.0]),
        _rows(RANDOM_PERT, CONDS, seed=seed, pearson_r=[0.0, 0.2], l2=[10.0, 12.0]),
        _rows(IDEALIZED, CONDS, seed=seed, pearson_r=[0.95, 0.85], l2=[2.0, 2.0]),
    ], ignore_index=True)


def _known_frame(r=(0.4, 0.6), l2=(5.0, 7.0), seed=1, bounds=None):
    """A global fit with means r 0.5, L2 6 (by default) beside the known bounds."""
    bounds = _known_bounds(seed) if bounds is None else bounds
    return pd.concat([_global(CONDS, seed=seed, pearson_r=r, l2=l2), bounds], ignore_index=True)


def test_gap_closed_function_known_answers():
    assert gap_closed(0.5, 0.2, 0.8, False) == pytest.approx(50.0)
    assert gap_closed(6.0, 10.0, 2.0, True) == pytest.approx(50.0)
    # lower is better: the same formula on −L2 gives the same number
    assert gap_closed(6.0, 10.0, 2.0, True) == pytest.approx(gap_closed(-6.0, -10.0, -2.0, False))
    np.testing.assert_allclose(gap_closed(np.array([0.2, 0.8, 1.1]), 0.2, 0.8, False), [0.0, 100.0, 150.0])
    # NaN when BAP is not better than WAP (equal, worse, or undefined)
    assert np.isnan(gap_closed(0.5, 0.2, 0.2, False))
    assert np.isnan(gap_closed(0.5, 0.8, 0.2, False))
    assert np.isnan(gap_closed(6.0, 2.0, 10.0, True))
    assert np.isnan(gap_closed(0.5, np.nan, 0.8, False))
    assert np.isnan(gap_closed(np.array([0.5, 0.6]), 0.2, np.nan, False)).all()


def test_gap_closed_known_answers():
    ceiling = pd.DataFrame({"condition": CONDS, "pearson_r": [0.8, 0.8], "l2": [1.0, 1.0]})
    table = progress_bar_table(_known_frame(), ceiling)
    assert list(table.columns) == PROGRESS_COLUMNS
    assert list(table["Method"]) == ["global", "global"] and list(table["Baseline"]) == ["b", "b"]
    r, l2 = table.set_index("Metric").loc["Pearson r"], table.set_index("Metric").loc["L2"]
    # Pearson r: WAP = best null (train mean 0.2; no change is NaN and does not compete),
    # BAP = worse cheater (ceiling 0.8 < idealized 0.9): (0.5 − 0.2) / (0.8 − 0.2) = 50 %
    assert (r["WAP"], r["WAP method"], r["BAP"], r["BAP method"]) == (pytest.approx(0.2), TRAIN_MEAN, 0.8, NOISE_CEILING)
    assert r["Score"] == pytest.approx(0.5) and r["% of gap closed"] == pytest.approx(50.0)
    assert r[NO_CHANGE] != r[NO_CHANGE]  # NaN: undefined everywhere
    assert (r[TRAIN_MEAN], r[RANDOM_PERT], r[IDEALIZED], r[NOISE_CEILING]) == pytest.approx((0.2, 0.1, 0.9, 0.8))
    # the no-change null's undefined r leaves no perturbation out
    assert (r["Perturbations"], r["Ceiling Perturbations"]) == (2, 2)
    # L2: WAP = lowest null L2 (train mean 10, tie with random: first in order), BAP = higher cheater L2 (idealized 2)
    assert (l2["WAP"], l2["WAP method"], l2["BAP"], l2["BAP method"]) == (10.0, TRAIN_MEAN, 2.0, IDEALIZED)
    assert l2["% of gap closed"] == pytest.approx(100 * (10 - 6) / (10 - 2))


def test_score_at_wap_is_zero_and_a_gap_that_is_not_positive_is_nan():
    table = progress_bar_table(_known_frame(r=(0.1, 0.3), l2=(10.0, 10.0)), None).set_index("Metric")
    assert table.loc["Pearson r", "% of gap closed"] == pytest.approx(0.0)
    assert table.loc["L2", "% of gap closed"] == pytest.approx(0.0)
    assert table.loc["Pearson r", "BAP method"] == IDEALIZED  # without a ceiling the idealized bound alone
    assert table.loc["Pearson r", "Ceiling Perturbations"] == 0
    bounds = _known_bounds()
    bounds = pd.concat([bounds[bounds.method != IDEALIZED],
                        _rows(IDEALIZED, CONDS, pearson_r=[0.1, 0.1], l2=[20.0, 20.0])], ignore_index=True)
    table = progress_bar_table(_known_frame(bounds=bounds), None)
    assert table["% of gap closed"].isna().all()
    assert table["Score"].notna().all()


def test_competing_kinds_get_rows_and_bounds_do_not():
    frame = pd.concat([
        _rows("my model", CONDS, "external model", "my model", pearson_r=[0.5, 0.5], l2=[6.0, 6.0]),
        _global(CONDS, pearson_r=[0.4, 0.6], l2=[5.0, 7.0]),
        _rows("b · LSFT top 5%", CONDS, "LSFT", "b", 5.0, pearson_r=[0.6, 0.6], l2=[4.0, 4.0]),
        _rows("b · kNN top 5%", CONDS, "kNN", "b", 5.0, pearson_r=[0.3, 0.3], l2=[8.0, 8.0]),
        _known_bounds(),
    ], ignore_index=True)
    table = progress_bar_table(frame, None, metrics=("pearson_r",))
    assert list(zip(table["Baseline"], table["Top %"], table["Method"])) == [
        ("my model", "external", "external"), ("b", "5%", "LSFT"), ("b", "5%", "kNN"), ("b", "global", "global")]
    np.testing.assert_allclose(table["Score"], [0.5, 0.6, 0.3, 0.5])
    np.testing.assert_allclose(table["% of gap closed"], 100 * (np.array([0.5, 0.6, 0.3, 0.5]) - 0.2) / 0.7)


def test_undefined_values_leave_the_perturbation_out_of_every_mean():
    """SPEC 7.1: a perturbation whose metric is undefined for one compared method is out of every mean."""
    conds = [*CONDS, "t3+ctrl"]
    frame = pd.concat([
        _global(conds, pearson_r=[0.4, 0.6, np.nan], l2=[5.0, 7.0, 100.0]),
        _rows(TRAIN_MEAN, conds, pearson_r=[0.1, 0.3, 0.9], l2=[11.0, 9.0, 1.0]),
        _rows(NO_CHANGE, conds, pearson_r=[np.nan] * 3, l2=[12.0, 12.0, 12.0]),
        _rows(RANDOM_PERT, conds, pearson_r=[0.0, 0.2, 0.9], l2=[10.0, 12.0, 1.0]),
        _rows(IDEALIZED, conds, pearson_r=[0.95, 0.85, 0.0], l2=[2.0, 2.0, 50.0]),
    ], ignore_index=True)
    ceiling = pd.DataFrame({"condition": conds, "pearson_r": [0.8, 0.8, 0.0], "l2": [1.0, 1.0, 1.0]})
    table = progress_bar_table(frame, ceiling).set_index("Metric")
    r = table.loc["Pearson r"]
    # r over t1, t2 only (the global fit's r of t3 is undefined): the known answers of two conditions
    assert (r["Score"], r["WAP"], r["BAP"], r["Perturbations"]) == (pytest.approx(0.5), pytest.approx(0.2), 0.8, 2)
    assert r["% of gap closed"] == pytest.approx(50.0)
    l2 = table.loc["L2"]  # L2 is defined everywhere: all three conditions
    assert l2["Perturbations"] == 3 and l2["Score"] == pytest.approx(112 / 3)
    assert (l2["WAP"], l2["WAP method"]) == (pytest.approx(7.0), TRAIN_MEAN)
    assert (l2["BAP"], l2["BAP method"]) == (pytest.approx(18.0), IDEALIZED)


def test_perfect_predictions_rank_zero_and_close_the_whole_gap():
    obs = np.random.default_rng(0).normal(size=(40, 6))
    conds = [f"g{i}+ctrl" for i in range(6)]
    top = np.arange(20)
    perfect = perturbation_metrics(obs.copy(), obs, top)
    assert (rank_metrics(obs.copy(), obs)["rank"] == 0).all()
    nulls = [(TRAIN_MEAN, np.repeat(obs.mean(1, keepdims=True), 6, axis=1)), (NO_CHANGE, np.zeros_like(obs))]
    frames = [_rows(m, conds, **perturbation_metrics(p, obs, top)[["pearson_r", "l2"]]) for m, p in nulls]
    frames.append(_rows(IDEALIZED, conds, **perfect[["pearson_r", "l2"]]))
    frames.append(_global(conds, **perfect[["pearson_r", "l2"]]))
    ceiling = pd.DataFrame({"condition": conds, **perfect[["pearson_r", "l2"]]})  # e.g. one cell per condition
    table = progress_bar_table(pd.concat(frames, ignore_index=True), ceiling)
    np.testing.assert_allclose(table["% of gap closed"], [100.0, 100.0])


def test_missing_condition_in_the_ceiling_or_missing_metric_is_an_error():
    ceiling = pd.DataFrame({"condition": CONDS[:1], "pearson_r": [0.8], "l2": [1.0]})
    with pytest.raises(ValueError, match="no score"):
        progress_bar_table(_known_frame(), ceiling)
    with pytest.raises(ValueError, match="no column 'mae'"):
        progress_bar_table(_known_frame(), None, metrics=("pearson_r", "mae"))


def test_discrimination_and_rank_take_bap_from_the_idealized_baseline_alone():
    """ds_l1 and rank are not bounded by the noise ceiling (registry ``ceiling=False``), even when the ceiling
    frame has a column of that name; their % of gap closed is finite."""
    frame = pd.concat([
        _global(CONDS, ds_l1=[0.7, 0.8], rank=[0.2, 0.3]),
        _rows(TRAIN_MEAN, CONDS, ds_l1=[0.5, 0.5], rank=[1.0, 1.0]),
        _rows(NO_CHANGE, CONDS, ds_l1=[0.5, 0.5], rank=[1.0, 1.0]),
        _rows(RANDOM_PERT, CONDS, ds_l1=[0.6, 0.6], rank=[0.5, 0.4]),
        _rows(IDEALIZED, CONDS, ds_l1=[1.0, 0.9], rank=[0.0, 0.1]),
    ], ignore_index=True)
    # a ceiling that would bind (tighter than the idealized bound) if it were used
    ceiling = pd.DataFrame({"condition": CONDS, "ds_l1": [0.8, 0.8], "rank": [0.3, 0.3]})
    table = progress_bar_table(frame, ceiling, metrics=("ds_l1", "rank")).set_index("Metric")
    ds, rank = table.loc["Discrimination (L1)"], table.loc["Rank"]
    assert (ds["WAP"], ds["WAP method"], ds["BAP"], ds["BAP method"]) == (
        pytest.approx(0.6), RANDOM_PERT, pytest.approx(0.95), IDEALIZED)
    assert np.isnan(ds[NOISE_CEILING]) and ds["Ceiling Perturbations"] == 0
    assert ds["% of gap closed"] == pytest.approx(100 * (0.75 - 0.6) / (0.95 - 0.6))
    # rank: lower is better; WAP = random (0.45), BAP = idealized (0.05)
    assert (rank["WAP"], rank["WAP method"], rank["BAP"], rank["BAP method"]) == (
        pytest.approx(0.45), RANDOM_PERT, pytest.approx(0.05), IDEALIZED)
    assert rank["% of gap closed"] == pytest.approx(100 * (0.45 - 0.25) / (0.45 - 0.05))
    assert np.isfinite(table["% of gap closed"]).all()


def _score(nulls: NullPredictions, pred, conditions, keep, top_genes=1000, settings=None):
    """Score predictions (genes × conditions, all measured genes) with the report stage's scoring."""
    reference = GeneReference(Labels(nulls.genes, name="gene"), nulls.ctrl_mean, nulls.train_mean)
    observed = nulls.observed[:, Labels(nulls.test, name="condition").get_indexer(list(conditions))]
    settings = settings or ComparisonSettings(top_genes=top_genes)
    values, _ = score_on_genes(pred, observed, list(conditions), nulls.genes, nulls.genes, reference, sorted(keep),
                               settings, None)
    return pd.DataFrame(values, index=list(conditions))


def _null_frame(nulls: NullPredictions, keep, top_genes=1000, seed=1):
    """The null and idealized methods' rows of a comparison frame over ``keep``."""
    parts = []
    for method, (conds, pred) in nulls.predicted.items():
        scores = _score(nulls, pred, conds, keep, top_genes).loc[sorted(keep)]
        parts.append(_rows(method, scores.index, seed=seed, **{c: scores[c] for c in scores.columns}))
    return pd.concat(parts, ignore_index=True)


def test_null_methods_on_a_split(small_pb, small_split, tmp_path):
    nulls = null_predictions(small_pb, small_split, dim=10, ridge=0.1, random_seed=1)
    assert list(nulls.predicted) == [*NULL_METHODS, IDEALIZED]
    test = small_split["test"]
    assert nulls.test == test and nulls.genes == list(small_pb.var_names)
    x = np.asarray(small_pb.X, dtype=np.float64)
    delta = pd.DataFrame(x - x[list(small_pb.obs_names).index("ctrl")], index=small_pb.obs_names,
                         columns=small_pb.var_names)
    m = delta.loc[[c for c in small_split["train"] if c != "ctrl"]].mean().to_numpy()
    np.testing.assert_allclose(train_mean_delta(small_pb, small_split), m)
    np.testing.assert_allclose(nulls.train_mean, m)
    np.testing.assert_allclose(nulls.observed, delta.loc[test].to_numpy().T)
    # the predictions themselves: Δ̂ = m and Δ̂ = 0
    np.testing.assert_allclose(nulls.predicted[TRAIN_MEAN][1], np.repeat(m[:, None], len(test), axis=1))
    assert not nulls.predicted[NO_CHANGE][1].any()

    by = {meth: _score(nulls, pred, conds, test, top_genes=50) for meth, (conds, pred) in nulls.predicted.items()}
    # no change: r undefined, L2 = ‖Δ‖; train mean: L2 = ‖Δ − m‖, centred r undefined
    assert by[NO_CHANGE]["pearson_r"].isna().all()
    np.testing.assert_allclose(by[NO_CHANGE].loc[test, "l2"], np.linalg.norm(delta.loc[test], axis=1))
    np.testing.assert_allclose(by[TRAIN_MEAN].loc[test, "l2"], np.linalg.norm(delta.loc[test] - m, axis=1))
    assert by[TRAIN_MEAN]["centered_pearson_r"].isna().all()
    # random perturbation embedding = baseline lpm_randomPertEmb with the same seed
    problem = make_problem(small_pb, small_split, build_embedding(RANDOM_PERT_SPEC, small_pb, small_split, 10,
                                                                  dataset="d"), 50)
    assert nulls.predicted[RANDOM_PERT][0] == problem.test
    predicted = global_predictions(problem, 0.1)
    np.testing.assert_allclose(nulls.predicted[RANDOM_PERT][1], predicted)
    expected = perturbation_metrics(predicted, problem.y[:, problem.col(problem.test)], problem.top_idx)
    np.testing.assert_allclose(by[RANDOM_PERT].loc[problem.test, ["pearson_r", "l2", "pearson_delta_top1000"]],
                               expected[["pearson_r", "l2", "pearson_delta_top1000"]])
    # every method in one comparison frame: no change (r undefined everywhere) never is the WAP of r
    keep = sorted(set(problem.test) & set(test))
    frame = pd.concat([_global(keep, pearson_r=np.full(len(keep), 0.3), l2=np.ones(len(keep))),
                       _null_frame(nulls, keep, top_genes=50)], ignore_index=True)
    table = progress_bar_table(frame, None).set_index("Metric")
    assert table.loc["Pearson r", "WAP method"] != NO_CHANGE
    assert table.loc["Pearson r", "Perturbations"] == len(keep)
    # save/load round trip
    nulls.save(tmp_path / "nulls.npz")
    back = NullPredictions.load(tmp_path / "nulls.npz")
    assert (back.genes, back.test, list(back.predicted)) == (nulls.genes, nulls.test, list(nulls.predicted))
    for name in ("observed", "ctrl_mean", "train_mean"):
        np.testing.assert_array_equal(getattr(back, name), getattr(nulls, name))
    for meth, (conds, pred) in nulls.predicted.items():
        assert back.predicted[meth][0] == conds
        np.testing.assert_array_equal(back.predicted[meth][1], pred)


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
    nulls = null_predictions(pb, split, dim=10, ridge=0.1)
    conds, pred = nulls.predicted[IDEALIZED]
    ideal = _score(nulls, pred, conds, conds, top_genes=40)
    problem = make_problem(pb, split, build_embedding(SELFTRAINED, pb, split, 10, dataset="d"), 40)
    selftrained = perturbation_metrics(global_predictions(problem, 0.1), problem.y[:, problem.col(problem.test)],
                                       problem.top_idx)
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
    nulls = null_predictions(small_pb, small_split)
    ceiling = noise_ceiling(small_h5ad, small_pb, replicates=8, seed=1, conditions=small_split["test"], top_n=50,
                            centers={"seed1": m})
    problem = make_problem(small_pb, small_split, build_embedding(SELFTRAINED, small_pb, small_split, 10, dataset="d"),
                           50)
    assert problem.genes.equals(small_pb.var_names)
    keep = sorted(set(problem.test) & set(nulls.test))
    fit = _score(nulls, global_predictions(problem, 0.1), problem.test, keep, top_genes=50).loc[keep]
    frame = pd.concat([_global(keep, baseline="lpm_selftrained", **{c: fit[c] for c in fit.columns}),
                       _null_frame(nulls, keep, top_genes=50)], ignore_index=True)
    metrics = ("pearson_r", "l2", "centered_pearson_r", "ds_l1", "rank")
    table = progress_bar_table(frame, ceiling, metrics=metrics,
                               ceiling_columns={"centered_pearson_r": "centered_pearson_r_seed1"})
    assert list(table["Metric"]) == ["Pearson r", "L2", "Centred Pearson r", "Discrimination (L1)", "Rank"]
    assert set(table["WAP method"]) <= set(NULL_METHODS) and set(table["BAP method"]) <= set(CHEATER_METHODS)
    ceil = ceiling.set_index("condition").loc[keep]
    ideal = frame[frame.method == IDEALIZED].set_index("condition").loc[keep]
    by = table.set_index("Metric")
    bap = by["BAP"]
    assert bap["Pearson r"] == pytest.approx(min(ceil["pearson_r"].mean(), ideal["pearson_r"].mean()))
    assert bap["L2"] == pytest.approx(max(ceil["l2"].mean(), ideal["l2"].mean()))
    assert bap["Centred Pearson r"] == pytest.approx(
        min(ceil["centered_pearson_r_seed1"].mean(), ideal["centered_pearson_r"].mean()))
    assert by.loc["Pearson r", "Ceiling Perturbations"] == int(ceil["pearson_r"].notna().sum())
    # the discrimination score and the rank: the idealized baseline alone, with a finite gap
    for name, column in (("Discrimination (L1)", "ds_l1"), ("Rank", "rank")):
        assert by.loc[name, "BAP method"] == IDEALIZED
        assert by.loc[name, "BAP"] == pytest.approx(ideal[column].mean())
        assert by.loc[name, "Ceiling Perturbations"] == 0
        assert np.isfinite(by.loc[name, "% of gap closed"])
    # the scores are those of the global fit over the same perturbations
    assert by.loc["Pearson r", "Score"] == pytest.approx(fit["pearson_r"].mean())
    assert by.loc["Rank", "Score"] == pytest.approx(fit["rank"].mean())


def test_pool_over_seeds():
    t1 = progress_bar_table(_known_frame(), None)
    bounds = _known_bounds(seed=2)
    bounds["pearson_r"] = bounds["pearson_r"].where(bounds.method != TRAIN_MEAN, 0.0)
    t2 = progress_bar_table(_known_frame(r=(0.3, 0.3), l2=(4.0, 4.0), seed=2, bounds=bounds), None)
    pooled = pool_progress_bars([t1, t2]).set_index("Metric")
    r = pooled.loc["Pearson r"]
    assert r["Score"] == pytest.approx(0.4) and r["WAP"] == pytest.approx((0.2 + 0.1) / 2)
    assert r["WAP method"] == f"{TRAIN_MEAN} / {RANDOM_PERT}" and r["Seeds"] == 2
    assert r["Perturbations"] == 4
    # SPEC 7.1: the pooled % of gap closed is the mean of the per-seed values, the numbers its SD is over
    per_seed = [t.set_index("Metric").loc["Pearson r", "% of gap closed"] for t in (t1, t2)]
    assert per_seed == pytest.approx([100 * (0.5 - 0.2) / (0.9 - 0.2), 100 * (0.3 - 0.1) / (0.9 - 0.1)])
    assert r["% of gap closed"] == pytest.approx(np.mean(per_seed))
    assert r["% of gap closed"] != pytest.approx(100 * (0.4 - 0.15) / (0.9 - 0.15))  # not a ratio of pooled means
    assert r["% of gap closed SD"] == pytest.approx(np.std(per_seed, ddof=1))
    assert r["Score SD"] == pytest.approx(np.std([0.5, 0.3], ddof=1))
    l2_per_seed = [t.set_index("Metric").loc["L2", "% of gap closed"] for t in (t1, t2)]
    assert pooled.loc["L2", "% of gap closed"] == pytest.approx(np.mean(l2_per_seed))
