"""Genetic interactions (SPEC 10, last bullet): the empirical null, thresholds and TPR–FDP detection, against
planted truth, scipy reference fits and hand-computed curves; the figure writes its files."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from lsftbench.evaluation.interactions import (
    detection_curve,
    detection_summary,
    fit_empirical_null,
    interaction_curves,
    interaction_labels,
    interaction_table,
    interaction_thresholds,
    nonadditivity,
    tpr_envelope,
)

GENES, DOUBLES = 1000, 60  # 60,000 (gene, double) pairs, the size of the paper's test set
NULL_DELTA, NULL_SIGMA = 0.02, 0.1
#: Planted mixtures (weight, mean, SD), the null first: synergy/suppression clusters far (6 σ) or near (3 σ).
MIXTURES = {
    "far": [(0.95, NULL_DELTA, NULL_SIGMA), (0.03, 0.6, 0.1), (0.02, -0.6, 0.1)],
    "near": [(0.95, NULL_DELTA, NULL_SIGMA), (0.03, 0.3, 0.1), (0.02, -0.3, 0.1)],
}


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def planted(kind: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Genes × doubles arrays with planted non-additivity: ``e``, the planted class (+1, −1, 0), the component's
    mean (the planted effect), the singles' Δ and Δ_AB = Δ_A + Δ_B + e; the pairs in random order."""
    rng = np.random.default_rng(seed)
    n = GENES * DOUBLES
    sizes = [round(w * n) for w, _, _ in MIXTURES[kind]]
    e = np.concatenate([rng.normal(m, s, k) for (_, m, s), k in zip(MIXTURES[kind], sizes, strict=True)])
    truth = np.repeat([0, 1, -1], sizes).astype(np.int8)
    effect = np.repeat([0.0, MIXTURES[kind][1][1], MIXTURES[kind][2][1]], sizes)
    order = rng.permutation(n)
    shape = (GENES, DOUBLES)
    delta_a, delta_b = rng.normal(0, 0.3, shape), rng.normal(0, 0.3, shape)
    e, truth, effect = e[order].reshape(shape), truth[order].reshape(shape), effect[order].reshape(shape)
    return {"e": e, "truth": truth, "effect": effect, "delta_a": delta_a, "delta_b": delta_b,
            "delta_ab": delta_a + delta_b + e}


def oracle_thresholds(kind: str, level: float = 0.05) -> tuple[float, float]:
    """Where the true local fdr of the planted mixture crosses ``level`` below and above the null's centre."""
    comp = MIXTURES[kind]

    def fdr(x: float) -> float:
        dens = [w * stats.norm.pdf(x, m, s) for w, m, s in comp]
        return dens[0] / sum(dens)

    lower = optimize.brentq(lambda x: fdr(x) - level, -2.0, NULL_DELTA)
    upper = optimize.brentq(lambda x: fdr(x) - level, NULL_DELTA, 2.0)
    return lower, upper


def truncated_normal_mle(e: np.ndarray) -> tuple[float, float, float]:
    """The idea of locfdr's ``nulltype = 1`` (its ``locmle``): a normal truncated to a central window fitted by
    maximum likelihood to the values in it, π0 = (share of values in the window) / (null mass of the window).
    The window is the one locfdr's documentation describes as its default: median ± b · IQR / (2 · 0.6745),
    b = 4.3 · exp(−0.26 · log10 N). Written with scipy.stats.truncnorm and scipy.optimize, as a reference."""
    med = np.median(e)
    b = 4.3 * math.exp(-0.26 * math.log10(e.size))
    half = b * stats.iqr(e, scale="normal")
    lo, hi = med - half, med + half
    inside = e[(e >= lo) & (e <= hi)]

    def nll(theta: np.ndarray) -> float:
        delta, sigma = theta[0], math.exp(theta[1])
        return -float(stats.truncnorm.logpdf(inside, (lo - delta) / sigma, (hi - delta) / sigma, delta, sigma).sum())

    fit = optimize.minimize(nll, np.array([med, math.log(half / 2)]), method="Nelder-Mead",
                            options={"xatol": 1e-8, "fatol": 1e-8})
    delta, sigma = fit.x[0], math.exp(fit.x[1])
    mass = stats.norm.cdf(hi, delta, sigma) - stats.norm.cdf(lo, delta, sigma)
    return delta, sigma, inside.size / e.size / mass


# --- non-additivity ----------------------------------------------------------------------------------


def test_nonadditivity_gives_the_floor_methods_exactly():
    data = planted("far")
    a, b = data["delta_a"], data["delta_b"]
    assert np.array_equal(nonadditivity(a + b, a, b), np.zeros_like(a))  # additive: exactly 0.0, every pair
    assert np.array_equal(nonadditivity(np.zeros_like(a), a, b), -(a + b))  # no_change
    np.testing.assert_allclose(nonadditivity(data["delta_ab"], a, b), data["e"], atol=1e-12)
    with_nan = a.copy()
    with_nan[0, 0] = np.nan
    assert np.isnan(nonadditivity(data["delta_ab"], with_nan, b)[0, 0])
    with pytest.raises(ValueError, match="one shape"):
        nonadditivity(a[:, :3], a, b)


# --- the empirical null and thresholds (a), (f) ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["far", "near"])
def test_thresholds_recover_planted_interactions(kind):
    """(a) 95 % of 60,000 pairs from N(0.02, 0.1²), 3 % synergies and 2 % suppressions planted 6 σ (far) or
    3 σ (near) away. δ within 0.1 σ, σ within 5 % (its SD over replicates is 1.4 %), π0 within 0.03, each
    threshold within 0.03 (0.3 σ) of where the planted mixture's true fdr is 0.05. The labels recover the
    share of each planted cluster that the true thresholds would (far: 0.964 and 0.977, got 0.952 and 0.976;
    near: 0.188 and 0.299, got 0.148 and 0.252, the clusters overlapping the null) within 0.06, and their
    false-discovery proportion (far 0.0006, 0.0009; near 0.019, 0.013) is at most 0.05 and within 0.01 of the
    true thresholds' expected one."""
    data = planted(kind)
    lower, upper, null = interaction_thresholds(data["e"])
    assert null.delta == pytest.approx(NULL_DELTA, abs=0.1 * NULL_SIGMA)
    assert null.sigma == pytest.approx(NULL_SIGMA, rel=0.05)
    assert null.pi0 == pytest.approx(0.95, abs=0.03)
    true_lower, true_upper = oracle_thresholds(kind)
    assert lower == pytest.approx(true_lower, abs=0.03)
    assert upper == pytest.approx(true_upper, abs=0.03)
    labels = interaction_labels(data["e"], lower, upper)
    assert labels.dtype == np.int8 and labels.shape == data["e"].shape
    (w0, m0, s0), *clusters = MIXTURES[kind]
    for target, threshold, (w1, m1, s1) in zip((1, -1), (true_upper, true_lower), clusters, strict=True):
        called = labels == target
        recovered = (called & (data["truth"] == target)).sum() / (data["truth"] == target).sum()
        fdp = (called & (data["truth"] != target)).sum() / called.sum()
        tail = stats.norm.sf if target == 1 else stats.norm.cdf
        expected_recovered = tail(threshold, m1, s1)
        expected_fdp = w0 * tail(threshold, m0, s0) / (w0 * tail(threshold, m0, s0) + w1 * expected_recovered)
        assert recovered == pytest.approx(expected_recovered, abs=0.06), (target, recovered, expected_recovered)
        assert fdp <= 0.05 and fdp == pytest.approx(expected_fdp, abs=0.01), (target, fdp, expected_fdp)


def test_local_fdr_is_one_in_the_centre_and_the_level_at_the_thresholds():
    data = planted("far")
    lower, upper, null = interaction_thresholds(data["e"], fdr=0.05)
    assert null.local_fdr([NULL_DELTA]) == pytest.approx([1.0], abs=0.02)
    np.testing.assert_allclose(null.local_fdr([lower, upper]), 0.05, rtol=1e-6)
    outside = np.linspace(upper, data["e"].max() + 1.0, 500)  # beyond the histogram too: still ≤ the level
    assert (null.local_fdr(outside) <= 0.05 + 1e-9).all()
    assert (null.local_fdr(-outside) <= 0.05 + 1e-9).all()
    stricter = interaction_thresholds(data["e"], fdr=0.01)
    assert stricter[0] < lower and stricter[1] > upper


def test_null_fit_is_deterministic():
    e = planted("near")["e"]
    first, second = fit_empirical_null(e), fit_empirical_null(e)
    assert (first.delta, first.sigma, first.pi0) == (second.delta, second.sigma, second.pi0)
    assert interaction_thresholds(e)[:2] == interaction_thresholds(e.copy())[:2]


def test_central_matching_agrees_with_scipy_normal_fit_on_a_pure_null():
    """(f) On 60,000 pure-null values the central-matching δ and σ agree with ``scipy.stats.norm.fit`` (the
    maximum-likelihood fit of all values) within 0.05 σ and 5 %, π0 is ≥ 0.97, and no pair is called."""
    e = np.random.default_rng(1).normal(NULL_DELTA, NULL_SIGMA, GENES * DOUBLES)
    loc, scale = stats.norm.fit(e)
    lower, upper, null = interaction_thresholds(e)
    assert null.delta == pytest.approx(loc, abs=0.05 * scale)
    assert null.sigma == pytest.approx(scale, rel=0.05)
    assert null.pi0 >= 0.97
    assert (lower, upper) == (-math.inf, math.inf)
    assert not interaction_labels(e, lower, upper).any()


@pytest.mark.parametrize("kind", ["far", "near"])
def test_central_matching_agrees_with_the_truncated_normal_mle_of_locfdr_nulltype_1(kind):
    """(f) With planted interactions, the central-matching estimates agree with a truncated-normal maximum-
    likelihood fit to the central window (the method of locfdr's default ``nulltype = 1``, which the paper's code
    uses): δ within 0.05 σ, σ within 5 %, π0 within 0.03, and the reference itself is near the truth."""
    e = planted(kind)["e"].ravel()
    ref_delta, ref_sigma, ref_pi0 = truncated_normal_mle(e)
    null = fit_empirical_null(e)
    assert ref_sigma == pytest.approx(NULL_SIGMA, rel=0.05) and ref_pi0 == pytest.approx(0.95, abs=0.03)
    assert null.delta == pytest.approx(ref_delta, abs=0.05 * ref_sigma)
    assert null.sigma == pytest.approx(ref_sigma, rel=0.05)
    assert null.pi0 == pytest.approx(ref_pi0, abs=0.03)


def test_undefined_and_degenerate_inputs_are_refused():
    e = planted("far")["e"]
    with_nan = e.copy()
    with_nan[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_empirical_null(with_nan)
    with pytest.raises(ValueError, match="NaN"):
        interaction_labels(with_nan, -0.4, 0.4)
    with pytest.raises(ValueError, match="at least 200"):
        fit_empirical_null(e.ravel()[:199])
    with pytest.raises(ValueError, match="no spread"):
        fit_empirical_null(np.r_[np.zeros(900), np.linspace(-1, 1, 100)])
    with pytest.raises(ValueError, match="fdr"):
        interaction_thresholds(e, fdr=1.5)


# --- detection curves (b)–(e) ---------------------------------------------------------------------------


def test_ties_enter_the_ranking_together():
    """(e) ê = [3, 1, 1, 1, 0, 0] with true synergies at positions 0 and 3 (of the tied 1s) and 5: cutoffs only
    after 3, after all three 1s and after both 0s; any order of the input gives the same curve."""
    pred = np.array([3.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    labels = np.array([1, 0, -1, 1, 0, 1], dtype=np.int8)
    curve = detection_curve(pred, labels, "synergy")
    assert curve["cutoff"].tolist() == [3.0, 1.0, 0.0]
    assert curve["n_found"].tolist() == [1, 4, 6]
    assert curve["n_true_found"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(curve["fdp"], [0.0, 0.5, 0.5])
    np.testing.assert_allclose(curve["tpr"], [1 / 3, 2 / 3, 1.0])
    assert curve.attrs == {"n_true": 3, "n_pairs": 6}
    order = np.random.default_rng(0).permutation(6)
    pd.testing.assert_frame_equal(detection_curve(pred[order], labels[order], "synergy"), curve)
    # T(q) = 1/3 on [0, 0.5), 1 on [0.5, 1]: TPR at FDP 0.1 and 0.2 is 1/3, AUC = 0.5 · 1/3 + 0.5 · 1
    assert detection_summary(curve) == pytest.approx({"tpr_at_fdp_0.1": 1 / 3, "tpr_at_fdp_0.2": 1 / 3,
                                                      "auc": 0.5 / 3 + 0.5})
    fdp, tpr = tpr_envelope(curve)
    np.testing.assert_allclose(fdp, [0.0, 0.5])
    np.testing.assert_allclose(tpr, [1 / 3, 1.0])
    # suppression ranks ascending: the tied 0s first (no suppression), then the 1s (the one), then 3;
    # T(q) = 0 below FDP 0.8 and 1 from there: AUC 0.2
    low = detection_curve(pred, labels, "suppression")
    assert low["cutoff"].tolist() == [0.0, 1.0, 3.0] and low["n_true_found"].tolist() == [0, 1, 1]
    np.testing.assert_allclose(low["fdp"], [1.0, 4 / 5, 5 / 6])
    assert detection_summary(low) == pytest.approx({"tpr_at_fdp_0.1": 0.0, "tpr_at_fdp_0.2": 0.0, "auc": 0.2})


def test_a_tied_block_is_never_split_to_reach_a_low_fdp():
    """(e) Two true pairs and eight false share ê = 1: broken ties could list a true pair first (FDP 0); as a
    block the only cutoff has FDP 0.8, so TPR at FDP 0.1 and 0.2 is 0."""
    labels = np.array([1, 1] + [0] * 8, dtype=np.int8)
    curve = detection_curve(np.ones(10), labels, "synergy")
    assert len(curve) == 1 and curve["fdp"].iloc[0] == pytest.approx(0.8)
    assert detection_summary(curve) == pytest.approx({"tpr_at_fdp_0.1": 0.0, "tpr_at_fdp_0.2": 0.0, "auc": 0.2})


def test_no_true_pair_gives_nan_and_bad_input_is_refused():
    curve = detection_curve(np.arange(5.0), np.zeros(5, dtype=np.int8), "synergy")
    assert curve["tpr"].isna().all()
    assert all(math.isnan(v) for v in detection_summary(curve).values())
    with pytest.raises(ValueError, match="direction"):
        detection_curve(np.arange(5.0), np.zeros(5), "both")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN"):
        detection_curve(np.array([1.0, np.nan]), np.zeros(2), "synergy")
    with pytest.raises(ValueError, match="one shape"):
        detection_curve(np.arange(3.0), np.zeros(4), "synergy")


def _methods(data: dict[str, np.ndarray], seed: int = 2) -> dict[str, np.ndarray]:
    a, b = data["delta_a"], data["delta_b"]
    rng = np.random.default_rng(seed)
    return {
        "perfect": nonadditivity(data["delta_ab"], a, b),  # ê = e
        "planted_effect": data["effect"],  # the planted component's mean, 0 for the null pairs
        "additive": nonadditivity(a + b, a, b),
        "no_change": nonadditivity(np.zeros_like(a), a, b),
        "random": rng.normal(size=a.shape),
    }


@pytest.fixture(scope="module")
def far_table() -> pd.DataFrame:
    data = planted("far")
    return interaction_table(_methods(data), data["e"]).set_index(["method", "direction"])


def test_perfect_methods_reach_tpr_one(far_table):
    """(b) ê = e ranks every true pair first: TPR 1 at FDP 0, AUC 1. The planted effect (ties inside each
    cluster) finds all 1,800 planted synergies as one block, 1,713 of them true pairs: FDP 0.048, TPR 0.999."""
    for direction in ("synergy", "suppression"):
        row = far_table.loc[("perfect", direction)]
        assert (row["tpr_at_fdp_0.1"], row["tpr_at_fdp_0.2"], row["auc"]) == (1.0, 1.0, 1.0)
        planted_row = far_table.loc[("planted_effect", direction)]
        assert planted_row["tpr_at_fdp_0.1"] >= 0.99 and planted_row["auc"] >= 0.95


def test_additive_floor_gets_tpr_zero_and_auc_equal_to_the_prevalence(far_table):
    """(c) ê ≡ 0 is one tied block: its only cutoff finds everything (FDP = 1 − prevalence ≈ 0.97), so TPR at
    FDP 0.1 and 0.2 is 0 and the AUC is exactly the prevalence."""
    for direction in ("synergy", "suppression"):
        row = far_table.loc[("additive", direction)]
        assert row["tpr_at_fdp_0.1"] == 0.0 and row["tpr_at_fdp_0.2"] == 0.0
        assert row["auc"] == pytest.approx(row["n_true"] / row["n_pairs"], abs=1e-12)
        assert row["prevalence"] == pytest.approx(row["n_true"] / row["n_pairs"])
        assert 0.015 < row["prevalence"] < 0.035


def test_random_and_no_change_rankings_score_at_prevalence_level(far_table):
    """(d) A random ê (and no_change, whose ê = −(Δ_A + Δ_B) is independent of the planted e) stays near
    FDP 1 − prevalence: TPR at FDP 0.2 ≤ 0.01 and AUC within 0.01 of the prevalence (≈ 0.029 and 0.020)."""
    for method in ("random", "no_change"):
        for direction in ("synergy", "suppression"):
            row = far_table.loc[(method, direction)]
            assert row["tpr_at_fdp_0.1"] <= row["tpr_at_fdp_0.2"] <= 0.01, (method, direction)
            assert row["auc"] == pytest.approx(row["prevalence"], abs=0.01), (method, direction)


def test_table_counts_and_null(far_table):
    rows = far_table.reset_index()
    assert list(rows["method"].unique()) == ["perfect", "planted_effect", "additive", "no_change", "random"]
    assert list(rows["direction"].unique()) == ["synergy", "suppression"]
    assert (rows["n_pairs"] == GENES * DOUBLES).all() and (rows["n_left_out"] == 0).all()
    assert (rows["n_undefined_pairs"] == 0).all() and (rows["fdr"] == 0.05).all()
    assert rows["delta"].nunique() == rows["sigma"].nunique() == rows["upper"].nunique() == 1
    syn = rows[rows["direction"] == "synergy"]["n_true"].iloc[0]
    assert 1700 <= syn <= 1800  # the far synergy cluster (1,800 planted) above the threshold


def test_undefined_pairs_are_left_out_and_counted():
    """Observed NaN (a single not in training): left out of the null, the labels and every ranking. A method's
    NaN (a double it cannot predict): with test_set="common" every method is ranked over the pairs all
    predict; with "per_method" only that method loses them; the true pairs left out are counted."""
    data = planted("far")
    observed = data["e"].copy()
    observed[:, 0] = np.nan  # double 0 undefined
    methods = _methods(data)
    methods["perfect"] = methods["perfect"].copy()
    methods["perfect"][:, 1] = np.nan  # double 1 not predictable by "perfect"
    reference = interaction_thresholds(observed[:, 1:])
    common = interaction_table(methods, observed).set_index(["method", "direction"])
    per_method = interaction_table(methods, observed, test_set="per_method").set_index(["method", "direction"])
    lower, upper = reference[:2]
    true_in_double_1 = int((observed[:, 1] > upper).sum())
    for table in (common, per_method):
        assert (table["n_undefined_pairs"] == GENES).all() and (table["n_observed_pairs"] == GENES * 59).all()
        assert (table["lower"] == lower).all() and (table["upper"] == upper).all()
        row = table.loc[("perfect", "synergy")]
        assert (row["n_pairs"], row["n_left_out"], row["n_true_left_out"]) == (GENES * 58, GENES, true_in_double_1)
        assert row["tpr_at_fdp_0.1"] == 1.0
    assert common.loc[("additive", "synergy"), "n_pairs"] == GENES * 58
    assert per_method.loc[("additive", "synergy"), "n_pairs"] == GENES * 59
    assert per_method.loc[("additive", "synergy"), "n_left_out"] == 0
    with pytest.raises(ValueError, match="test_set"):
        interaction_table(methods, observed, test_set="all")
    with pytest.raises(ValueError, match="shape"):
        interaction_table({"x": np.zeros(3)}, observed)


def test_curves_stack_every_method_and_direction():
    data = planted("far")
    curves = interaction_curves(_methods(data), data["e"])
    assert list(curves.columns) == ["method", "direction", "cutoff", "n_found", "n_true_found", "fdp", "tpr"]
    additive = curves[(curves["method"] == "additive")]
    assert len(additive) == 2 and (additive["n_found"] == GENES * DOUBLES).all()  # one tied block per direction
    perfect = curves[(curves["method"] == "perfect") & (curves["direction"] == "synergy")]
    assert perfect["n_found"].is_monotonic_increasing and perfect["tpr"].is_monotonic_increasing


# --- figure -----------------------------------------------------------------------------------------------


def test_figure_writes_png_and_svg(tmp_path):
    from lsftbench.report.interaction_figure import interaction_figure, write_interaction_figure

    data = planted("near")
    curves = interaction_curves(_methods(data), data["e"])
    fig = interaction_figure(curves, "Genetic interactions: synthetic", protocol="default")
    axes = fig.get_axes()
    assert [ax.get_title().split(":")[0] for ax in axes] == ["synergy", "suppression"]
    assert [t.get_text() for t in axes[-1].get_legend().get_texts()] == [
        "perfect", "planted_effect", "additive (floor: ê ≡ 0)", "no_change (floor)", "random"]
    additive = [line for line in axes[0].get_lines() if line.get_label().startswith("additive")]
    assert len(additive) == 1 and additive[0].get_linestyle() == "--"
    import matplotlib.pyplot as plt

    plt.close(fig)
    outputs = [tmp_path / "interactions.png", tmp_path / "interactions.svg"]
    write_interaction_figure(curves, outputs, title="Genetic interactions: synthetic", provenance="seed 1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["interactions.png", "interactions.svg"]
    assert outputs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert outputs[1].read_text().lstrip().startswith("<?xml")
