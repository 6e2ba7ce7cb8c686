"""Genetic interactions of a run's methods (SPEC 10, last bullet) against the planted truth of the Norman stand-in.

Known answers, on the ``norman`` preset (seed 1: 36 singles, 84 doubles, 400 genes; every single trains and every
double is tested, 33,600 pairs): 17 synergistic doubles carry 170 planted synergy pairs, 17 suppressive ones 170
planted suppression pairs (``uns["interaction_truth"]``). The thresholds at local fdr 0.05 (about ±0.62, null σ
0.16) recover 120 / 170 = 71 % of the planted synergies and 125 / 170 = 74 % of the planted suppressions (the rest
are planted shifts too small for the noise of 40 cells per condition); on the additive, synergistic and suppressive
doubles the false-discovery proportion of the calls against the planted pairs is 19 / 139 = 0.14 (synergy) and
2 / 127 = 0.02 (suppression). The 17 ``dominant`` doubles (Δ_AB = Δ_A) are non-additive by construction but carry
no planted flag: their calls are real non-additivity (the expected ``e`` is beyond the thresholds), which is why the
test also scores all calls against the expected non-additivity (recovered 0.86 / 0.85, FDP 0.20 / 0.15). A model
predicting the true (expected) Δ_AB reaches TPR 0.88 (synergy) and 0.86 (suppression) at FDP 0.1, 0.95 and 0.96 at
FDP 0.2, AUC 0.96 and 0.97 (the labels come from the observed e, so sampling noise keeps it below 1); ``additive``
gets TPR 0 and AUC = the prevalence (0.011, 0.009); ``no change`` TPR 0.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lsftbench.data.pseudobulk import pseudobulk
from lsftbench.data.synthetic.datasets import make_dataset
from lsftbench.data.synthetic.doubles import TRUTH_KEY
from lsftbench.evaluation.interaction_scores import (
    NO_CHANGE,
    MethodPrediction,
    interaction_data,
    method_predictions,
    pool_interactions,
    seed_interactions,
)
from lsftbench.evaluation.interactions import interaction_labels, interaction_thresholds
from lsftbench.io import write_h5ad


@pytest.fixture(scope="module")
def norman(tmp_path_factory):
    """The stand-in's pseudobulk, its truth and the observed side of a split testing every double."""
    path = tmp_path_factory.mktemp("norman") / "perturb_processed.h5ad"
    adata = make_dataset("norman", seed=1)
    write_h5ad(adata, path)
    pb = pseudobulk(path)
    truth = adata.uns[TRUTH_KEY]
    singles = [c for c in pb.obs_names if "ctrl" in c]
    split = {"train": singles, "test": list(truth["doubles"])}
    data = interaction_data(pb, split)
    return {"pb": pb, "truth": truth, "split": split, "data": data}


def _aligned(norman, key):
    """A truth array (genes × doubles) in the order of the observed side's pairs."""
    truth, data = norman["truth"], norman["data"]
    rows = pd.Index(truth["genes"]).get_indexer(data.genes)
    cols = pd.Index(truth["doubles"]).get_indexer(data.doubles)
    return np.asarray(truth[key])[np.ix_(rows, cols)]


def test_pairs_are_every_test_double_and_the_top_genes(norman):
    data = norman["data"]
    assert data.observed_e.shape == (400, 84) and data.n_test_doubles == 84  # 400 genes < 1000: all of them
    small = interaction_data(norman["pb"], norman["split"], top_genes=50)
    ctrl = np.asarray(norman["pb"].X)[list(norman["pb"].obs_names).index("ctrl")]
    assert sorted(small.genes) == sorted(np.asarray(norman["pb"].var_names)[np.argsort(-ctrl, kind="stable")[:50]])
    # a test double one of whose singles is not in training is left out (it has no observed Δ_A + Δ_B)
    first = norman["split"]["test"][0]
    gene = first.split("+")[0]
    split = {"train": [c for c in norman["split"]["train"] if c != f"{gene}+ctrl"], "test": norman["split"]["test"]}
    fewer = interaction_data(norman["pb"], split)
    assert first not in fewer.doubles and fewer.n_test_doubles == 84 and len(fewer.doubles) < 84


def test_thresholds_recover_the_planted_synergies_and_suppressions(norman):
    e = norman["data"].observed_e
    lower, upper, null = interaction_thresholds(e.ravel())
    assert -0.7 < lower < -0.55 and 0.55 < upper < 0.7 and 0.14 < null.sigma < 0.19 and abs(null.delta) < 0.03
    labels = interaction_labels(e, lower, upper)
    types = np.broadcast_to(pd.Index(norman["truth"]["doubles"]).get_indexer(norman["data"].doubles), e.shape)
    types = np.asarray(norman["truth"]["type"])[types]
    planted_doubles = types != "dominant"
    expected = _aligned(norman, "expected_nonadditivity")
    for direction, target, planted in (("synergy", 1, _aligned(norman, "synergy")),
                                       ("suppression", -1, _aligned(norman, "suppression"))):
        called = labels == target
        recovered = (called & planted).sum() / planted.sum()
        fdp = (called & planted_doubles & ~planted).sum() / (called & planted_doubles).sum()
        assert planted.sum() == 170
        assert recovered > 0.68, (direction, recovered)  # measured 0.706 (synergy), 0.735 (suppression)
        assert fdp < 0.16, (direction, fdp)  # measured 0.137 (synergy), 0.016 (suppression)
        # every double, against the expected non-additivity (the dominant doubles' real interactions included)
        real = expected > upper if target == 1 else expected < lower
        assert (called & real).sum() / real.sum() > 0.8  # measured 0.86, 0.85
        assert (called & ~real).sum() / called.sum() < 0.25  # measured 0.20, 0.15


def test_a_model_of_the_true_delta_finds_the_interactions_and_additive_none(norman):
    data, truth = norman["data"], norman["truth"]
    oracle = MethodPrediction("true Δ_AB", "external model", math.nan, list(truth["doubles"]), list(truth["genes"]),
                              np.asarray(truth["expected_delta"]))
    additive = MethodPrediction("additive", "global fit", math.nan, data.doubles, data.genes, data.singles_sum.copy())
    table, curves = seed_interactions(data, [additive, oracle])
    rows = table.set_index(["name", "direction"])
    for direction in ("synergy", "suppression"):
        # the labels come from the observed e, the oracle ranks by the expected one: the gap is sampling noise
        assert rows.loc[("true Δ_AB", direction), "tpr_at_fdp_0.1"] > 0.85, rows.loc["true Δ_AB"]
        assert rows.loc[("true Δ_AB", direction), "tpr_at_fdp_0.2"] > 0.9
        assert rows.loc[("true Δ_AB", direction), "auc"] > 0.9
        assert rows.loc[("additive", direction), "tpr_at_fdp_0.1"] == 0
        assert rows.loc[("additive", direction), "tpr_at_fdp_0.2"] == 0
        assert rows.loc[("additive", direction), "auc"] == pytest.approx(rows.loc[("additive", direction), "prevalence"])
        assert rows.loc[(NO_CHANGE, direction), "tpr_at_fdp_0.1"] < 0.2
    assert list(table["kind"]) == ["null"] * 2 + ["global fit"] * 2 + ["external model"] * 2
    assert (table["n_doubles"] == 84).all() and (table["n_pairs"] == 33_600).all()
    assert set(curves["name"]) == {NO_CHANGE, "additive", "true Δ_AB"}
    pooled = pool_interactions({1: table, 2: table})
    assert (pooled["seeds"] == 2).all() and (pooled["auc_sd"] == 0).all()
    np.testing.assert_allclose(pooled["auc"], table["auc"])


def test_a_method_missing_genes_or_doubles_leaves_those_pairs_out_for_all(norman, tmp_path):
    data = norman["data"]
    part = MethodPrediction("partial", "global fit", math.nan, data.doubles[:80], data.genes[:300],
                            data.singles_sum[:300, :80])
    table, _ = seed_interactions(data, [part])
    assert (table["n_pairs"] == 300 * 80).all() and (table["n_left_out"] == 400 * 84 - 300 * 80).all()
    # the files a run writes: a fit's .npz and two LSFT shards
    np.savez(tmp_path / "fit.npz", conditions=np.array(data.doubles), genes=np.array(data.genes),
             predicted=data.singles_sum)
    for i, cols in enumerate((slice(0, 40), slice(40, 84))):
        np.savez(tmp_path / f"chunk{i}.npz", conditions=np.array(data.doubles[cols]), genes=np.array(data.genes),
                 local=data.singles_sum[:, cols], knn=np.zeros((400, len(data.doubles[cols]))))
    methods = method_predictions({"b": tmp_path / "fit.npz"}, {("b", 5.0): [tmp_path / "chunk0.npz",
                                                                             tmp_path / "chunk1.npz"]})
    assert [(m.kind, m.top_pct) for m in methods][:1] == [("global fit", pytest.approx(math.nan, nan_ok=True))]
    table, _ = seed_interactions(data, methods)
    local = table[(table["kind"] == "LSFT")]
    assert (local["tpr_at_fdp_0.1"] == 0).all() and (local["n_pairs"] == 33_600).all()  # ê ≡ 0, as additive
    knn = table[(table["kind"] == "kNN")].set_index("direction")
    nochange = table[(table["kind"] == "null")].set_index("direction")
    np.testing.assert_allclose(knn["auc"], nochange["auc"])  # Δ̂ = 0 is the no-change floor


def test_a_seed_without_an_eligible_test_double_has_nothing_to_score(norman, tmp_path):
    """Known answers: a split whose test doubles all lack a training single (as a GEARS simulation seed whose test
    doubles are all combo_seen0/1) gives NaN TPR, AUC and prevalence with 0 doubles and 0 pairs; pooled with a
    scored seed, the scored seed's numbers are unchanged and ``seeds`` counts it alone."""
    from lsftbench.evaluation.interaction_scores import NO_ELIGIBLE_DOUBLE, interactions_from_files, unscored_reason
    from lsftbench.evaluation.statistics import StatsSettings
    from lsftbench.io import write_json
    from lsftbench.report.dataset_tables import DatasetTableSettings
    from lsftbench.report.interaction_tables import write_interactions

    pb, split = norman["pb"], norman["split"]
    genes_of_doubles = {g for c in split["test"] for g in c.split("+")}
    train = [c for c in split["train"] if c.split("+")[0] not in genes_of_doubles]
    empty = interaction_data(pb, {"train": train, "test": split["test"]})
    assert empty.doubles == [] and empty.n_test_doubles == 84 and empty.observed_e.shape == (400, 0)
    data = norman["data"]
    additive = MethodPrediction("additive", "global fit", math.nan, data.doubles, data.genes, data.singles_sum.copy())
    table, curves = seed_interactions(empty, [additive])
    assert list(table["name"]) == [NO_CHANGE] * 2 + ["additive"] * 2
    assert list(table["direction"]) == ["synergy", "suppression"] * 2
    values = ["tpr_at_fdp_0.1", "tpr_at_fdp_0.2", "auc", "prevalence", "lower", "upper", "delta", "sigma", "pi0"]
    assert table[values].isna().all().all()
    assert (table[["n_doubles", "n_pairs", "n_true", "n_left_out", "n_observed_pairs"]] == 0).all().all()
    assert (table["n_test_doubles"] == 84).all() and unscored_reason(table) == NO_ELIGIBLE_DOUBLE
    assert curves.empty and list(curves.columns) == ["name", "kind", "top_pct", "direction", "cutoff", "n_found",
                                                     "n_true_found", "fdp", "tpr"]
    # a split without any test double says the same
    singles_only = interaction_data(pb, {"train": split["train"], "test": []})
    assert singles_only.n_test_doubles == 0 and unscored_reason(seed_interactions(singles_only, [])[0]) is not None

    scored, _ = seed_interactions(data, [additive])
    assert unscored_reason(scored) is None
    pooled = pool_interactions({1: scored, 2: table}).set_index(["name", "direction"])
    one = pool_interactions({1: scored}).set_index(["name", "direction"])
    for column in ("tpr_at_fdp_0.1", "tpr_at_fdp_0.2", "auc", "prevalence", "n_pairs", "n_true", "n_doubles"):
        np.testing.assert_array_equal(pooled[column].to_numpy(), one[column].to_numpy())
    assert (pooled["seeds"] == 1).all() and pooled["auc_sd"].isna().all()
    assert pooled.loc[("additive", "synergy"), "auc"] == pytest.approx(scored["prevalence"].iloc[2])  # ê ≡ 0
    nothing = pool_interactions({2: table})
    assert nothing["auc"].isna().all() and (nothing["seeds"] == 0).all()

    # the rule's path: from the run's files, seed 2 without an eligible double, then its tables and figures
    write_json(split, tmp_path / "split1.json")
    write_json({"train": train, "val": [], "test": split["test"]}, tmp_path / "split2.json")
    pb_path = tmp_path / "pseudobulk.h5ad"
    write_h5ad(pb, pb_path)
    np.savez(tmp_path / "fit.npz", conditions=np.array(data.doubles), genes=np.array(data.genes),
             predicted=data.singles_sum)
    tables, curves = interactions_from_files(pb_path, {1: tmp_path / "split1.json", 2: tmp_path / "split2.json"},
                                             {(1, "additive"): tmp_path / "fit.npz",
                                              (2, "additive"): tmp_path / "fit.npz"}, {})
    pd.testing.assert_frame_equal(tables[1], scored)
    assert tables[2]["auc"].isna().all() and (tables[2]["n_doubles"] == 0).all() and curves[2].empty
    settings = DatasetTableSettings("norman", "default", [1, 2], StatsSettings(n_resamples=100))
    figures = {s: [tmp_path / f"interactions_seed{s}.png"] for s in (1, 2)}
    view = write_interactions(tables, curves, tmp_path / "tables", figures, settings)
    assert (view["Seeds"] == 1).all() and (view["Doubles"] == 84).all()
    text = (tmp_path / "tables" / "seed2" / "interactions.md").read_text()
    assert f"seed 2: **nothing to score**, {NO_ELIGIBLE_DOUBLE} (0 of 84 test doubles" in text
    assert "the pooled values are over the seeds scored" in (tmp_path / "tables" / "interactions.md").read_text()
    seed2 = pd.read_csv(tmp_path / "tables" / "seed2" / "interactions.csv")
    assert seed2["AUC"].isna().all() and (seed2["Doubles"] == 0).all() and (seed2["Test Doubles"] == 84).all()
    assert all(p[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in figures.values())


def test_the_figure_of_a_seed_with_nothing_to_score_says_so():
    import matplotlib.pyplot as plt

    from lsftbench.evaluation.interaction_scores import NO_ELIGIBLE_DOUBLE
    from lsftbench.report.interaction_figure import interaction_figure

    curves = pd.DataFrame({c: pd.Series(dtype="float64") for c in ("fdp", "tpr")}).assign(
        method=pd.Series(dtype=object), direction=pd.Series(dtype=object))
    fig = interaction_figure(curves, "Genetic interactions", empty=NO_ELIGIBLE_DOUBLE)
    assert [[t.get_text() for t in ax.texts] for ax in fig.get_axes()] == [[NO_ELIGIBLE_DOUBLE]] * 2
    plt.close(fig)
