"""Statistics of the LSFT tables (SPEC 7.1) against known answers and scipy reference calls."""

import warnings
from dataclasses import astuple

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lsftbench.evaluation.statistics import (
    FamilySpec,
    StatsSettings,
    bh_qvalues,
    bootstrap_ci,
    family_statistics,
    fraction_improved,
    paired_bootstrap_ci,
    paired_estimate,
    pooled_estimate,
    pooled_mean,
    pooled_signed_rank_p,
    row_statistics,
    signed_rank_p,
    stratified_bootstrap_ci,
    stratified_bootstrap_cis,
    wilson_ci,
)
from lsftbench.evaluation.test_sets import common_test_set, not_predictable_list, restrict_to_test_set

FAST = StatsSettings(n_resamples=999, confidence=0.95, seed=7)
R_COLUMNS = {"local": "local_pearson_r", "global": "global_pearson_r", "knn": "knn_pearson_r"}


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# --- bootstrap -----------------------------------------------------------------------------------


def test_bootstrap_equals_scipy_percentile_bootstrap_with_the_seeded_generator():
    x = np.random.default_rng(0).normal(0.4, 0.1, size=40)
    ref = stats.bootstrap((x,), np.mean, n_resamples=999, method="percentile", rng=np.random.default_rng(7)).confidence_interval
    assert bootstrap_ci(x, FAST) == pytest.approx((ref.low, ref.high), rel=1e-12)


def test_bootstrap_reproducible_and_seed_dependent():
    x = np.random.default_rng(1).normal(size=30)
    assert bootstrap_ci(x, FAST) == bootstrap_ci(x, FAST)
    assert bootstrap_ci(x, FAST) != bootstrap_ci(x, StatsSettings(n_resamples=999, seed=8))
    low, high = bootstrap_ci(x, FAST)
    assert low < x.mean() < high


def test_bootstrap_confidence_widens_interval():
    x = np.random.default_rng(2).normal(size=50)
    low90, high90 = bootstrap_ci(x, StatsSettings(n_resamples=999, confidence=0.90, seed=7))
    low99, high99 = bootstrap_ci(x, StatsSettings(n_resamples=999, confidence=0.99, seed=7))
    assert low99 < low90 and high90 < high99


def test_bootstrap_degenerate_cases():
    assert np.isnan(bootstrap_ci([0.3], FAST)).all()
    assert np.isnan(bootstrap_ci([], FAST)).all()
    assert bootstrap_ci([0.1, 0.1, 0.1], FAST) == (0.1, 0.1)  # exactly, no warning (fixture)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_ci([0.1, np.nan, 0.2], FAST)


def test_paired_ci_is_the_bootstrap_of_the_differences():
    rng = np.random.default_rng(3)
    y = rng.normal(size=25)
    x = y + 0.1 + rng.normal(0, 0.01, size=25)
    assert paired_bootstrap_ci(x, y, FAST) == bootstrap_ci(x - y, FAST)
    low, high = paired_bootstrap_ci(x, y, FAST)
    assert 0 < low < 0.1 < high


def test_settings_validate_and_read_config():
    assert StatsSettings.from_config({"n_resamples": 50, "seed": 3}) == StatsSettings(n_resamples=50, confidence=0.95, seed=3)
    assert StatsSettings.from_config(None) == StatsSettings()
    with pytest.raises(ValueError, match="confidence"):
        StatsSettings(confidence=95)
    with pytest.raises(ValueError, match="unknown"):
        StatsSettings.from_config({"resamples": 10})


# --- Wilcoxon, BH, Wilson ------------------------------------------------------------------------


def test_signed_rank_known_answers():
    # Exact two-sided null distribution for n = 5: P(W+ = 15) = P(W+ = 0) = 1/32.
    assert signed_rank_p([1, 2, 3, 4, 5]) == pytest.approx(2 / 32)
    assert signed_rank_p([0, 0, 1, 2, 3, 4, 5]) == pytest.approx(2 / 32)  # zero differences dropped
    assert signed_rank_p(np.zeros(6)) == 1.0  # all zero: defined as 1, no warning
    assert np.isnan(signed_rank_p([]))
    d = np.random.default_rng(4).normal(0.05, 1, size=80)
    assert signed_rank_p(d) == pytest.approx(stats.wilcoxon(d).pvalue, rel=1e-12)


def _wilcoxon_cases():
    """Differences with and without zeros and ties, 1 to 16 values: scipy's exact, permutation and normal paths."""
    rng = np.random.default_rng(21)
    for n in range(1, 17):
        for kind in ("plain", "ties", "zeros", "both"):
            d = rng.normal(0.3, 1, size=n)
            if kind in ("ties", "both") and n >= 3:
                d[1] = -d[0]  # |d| tied across signs
                d[2] = d[0]
            if kind in ("zeros", "both") and n >= 2:
                d[-1] = 0.0
            if np.any(d != 0):
                yield f"{kind}-{n}", d
    yield "integers", np.array([2.0, -1, 3, 3, -2, 1, 4, 0, 5])  # the differences of ranks or counts
    yield "all-positive-tied", np.array([1.0, 1, 1, 2, 2])


@pytest.mark.parametrize(("name", "d"), list(_wilcoxon_cases()))
def test_signed_rank_p_is_scipys_wilcoxon_to_the_last_bit(name, d):
    """Where ``scipy.stats.wilcoxon`` would enumerate the sign flips one at a time (zeros or ties, n <= 13) we run
    the same permutation test vectorised: the p-value must still be scipy's own, exactly."""
    assert signed_rank_p(d) == stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue, name


def test_bh_known_answer_and_scipy_parity():
    np.testing.assert_allclose(bh_qvalues([0.01, 0.04, 0.03, 0.005]), [0.02, 0.04, 0.04, 0.02])
    p = np.random.default_rng(5).uniform(size=17)
    np.testing.assert_array_equal(bh_qvalues(p), stats.false_discovery_control(p))
    q = bh_qvalues([0.01, np.nan, 0.04, 0.03, 0.005])
    assert np.isnan(q[1])
    np.testing.assert_allclose(q[[0, 2, 3, 4]], [0.02, 0.04, 0.04, 0.02])
    assert np.isnan(bh_qvalues([np.nan, np.nan])).all()


def test_wilson_equals_textbook_formula():
    k, n, z = 3, 10, stats.norm.ppf(0.975)
    phat = k / n
    centre = (phat + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(phat * (1 - phat) / n + z**2 / (4 * n**2))
    assert wilson_ci(k, n) == pytest.approx((centre - half, centre + half), rel=1e-12)
    assert wilson_ci(k, n) == pytest.approx((0.1078, 0.6032), abs=1e-4)
    assert wilson_ci(0, 10)[0] == pytest.approx(0.0, abs=1e-15)
    assert np.isnan(wilson_ci(0, 0)).all()


# --- pooling over seeds --------------------------------------------------------------------------


def test_pooled_mean_is_mean_of_per_seed_means():
    a, b = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.9, 1.1])
    est = pooled_estimate([a, b], FAST)
    assert est.mean == pytest.approx((0.25 + 1.0) / 2) and est.mean != pytest.approx(np.concatenate([a, b]).mean())
    assert est.sd == pytest.approx(np.std([0.25, 1.0], ddof=1))
    assert pooled_mean([a, b, np.array([])]) == est.mean  # an empty seed is left out
    assert np.isnan(pooled_estimate([a], FAST).sd)


def test_stratified_bootstrap_equals_scipy_with_one_sample_per_seed():
    rng = np.random.default_rng(6)
    a, b = rng.normal(0, 1, 12), rng.normal(5, 1, 9)
    ref = stats.bootstrap(
        (a, b), lambda x, y, axis: (x.mean(axis=axis) + y.mean(axis=axis)) / 2,
        n_resamples=999, method="percentile", rng=np.random.default_rng(7),
    ).confidence_interval
    assert stratified_bootstrap_ci([a, b], FAST) == pytest.approx((ref.low, ref.high), rel=1e-12)
    # Resampling within seeds: the seed offset (0 vs 5) adds no spread, unlike pooling all values.
    low, high = stratified_bootstrap_ci([a, b], FAST)
    naive_low, naive_high = bootstrap_ci(np.concatenate([a, b]), FAST)
    assert high - low < naive_high - naive_low


def test_paired_estimate_point_is_difference_of_pooled_means():
    x = [np.array([0.5, 0.7, 0.9]), np.array([0.2, 0.4])]
    y = [np.array([0.4, 0.5, 0.6]), np.array([0.1, 0.1])]
    est = paired_estimate(x, y, FAST)
    assert est.mean == pooled_mean(x) - pooled_mean(y)
    assert est.sd == pytest.approx(np.std([0.2, 0.2], ddof=1), abs=1e-15)


def test_pooled_wilcoxon_averages_each_perturbation_over_its_seeds():
    seeds = [1, 1, 1, 2, 2, 2]
    conds = ["a", "b", "c", "a", "b", "d"]
    d = [0.1, 0.3, -0.2, 0.3, 0.1, 0.5]
    # units: a 0.2, b 0.2, c -0.2, d 0.5 (ties between a and b)
    assert pooled_signed_rank_p(seeds, conds, d) == pytest.approx(stats.wilcoxon([0.2, 0.2, -0.2, 0.5]).pvalue, rel=1e-12)
    with pytest.raises(ValueError, match="more than once"):
        pooled_signed_rank_p([1, 1], ["a", "a"], [0.1, 0.2])


def test_fraction_improved_counts_distinct_perturbations():
    frac, low, high, k, n = fraction_improved([1, 1, 2, 2], ["a", "b", "a", "c"], [0.2, -0.1, -0.1, 0.0])
    assert (k, n) == (1, 3) and frac == pytest.approx(1 / 3)  # a: +0.05, b: -0.1, c: 0 (a tie is no gain)
    assert (low, high) == wilson_ci(1, 3)


# --- one table row: known answers ----------------------------------------------------------------


def _row_frame(local, glob, knn, seed=1):
    n = len(local)
    return pd.DataFrame({"seed": seed, "condition": [f"c{i}" for i in range(n)], "local_pearson_r": local,
                         "global_pearson_r": glob, "knn_pearson_r": knn})


def test_lsft_equal_to_global_gives_p_one_and_ci_containing_zero():
    g = np.random.default_rng(8).uniform(0.2, 0.8, size=30)
    s = family_statistics(_row_frame(g, g, g + 0.01), R_COLUMNS, True, FAST)
    assert s.p["global"] == 1.0
    imp = s.improvement["local"]
    assert imp.mean == 0.0 and imp.low <= 0.0 <= imp.high


def test_constant_shift_gives_ci_excluding_zero():
    rng = np.random.default_rng(9)
    g = rng.uniform(0.2, 0.8, size=30)
    s = family_statistics(_row_frame(g + 0.1 + rng.normal(0, 0.02, 30), g, g), R_COLUMNS, True, FAST)
    imp = s.improvement["local"]
    assert 0 < imp.low < 0.1 < imp.high and s.p["global"] < 1e-5
    assert s.fraction["local"][3:] == (30, 30)


def test_undefined_metric_is_left_out_of_every_mean():
    local, glob, knn = [0.5, np.nan, 0.7, 0.9], [0.4, 0.3, 0.2, np.nan], [0.1, 0.2, 0.3, 0.4]
    s = family_statistics(_row_frame(local, glob, knn), R_COLUMNS, True, FAST)
    assert (s.n_used, s.n_undefined) == (2, 2)
    assert s.means["local"].mean == pytest.approx(0.6) and s.means["global"].mean == pytest.approx(0.3)
    assert s.means["knn"].mean == pytest.approx(0.2)
    assert s.improvement["local"].mean == s.means["local"].mean - s.means["global"].mean


def test_families_of_one_row_share_a_bootstrap_with_the_intervals_of_separate_calls():
    """Families defined on the same perturbations are resampled together; one with another defined
    set gets its own resampling; every number equals a separate family_statistics call."""
    rng = np.random.default_rng(12)
    frames = []
    for seed, n in ((1, 25), (2, 31)):
        frame = _row_frame(rng.uniform(0, 1, n), rng.uniform(0, 1, n), rng.uniform(0, 1, n), seed=seed)
        frame["local_l2"], frame["global_l2"], frame["knn_l2"] = rng.uniform(1, 3, (3, n))
        frame["local_rank"], frame["global_rank"] = rng.uniform(0, 0.5, (2, n))
        frame.loc[frame.index[::4], "global_rank"] = np.nan  # this family has fewer defined perturbations
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True)
    specs = [FamilySpec(R_COLUMNS, True), FamilySpec({m: f"{m}_l2" for m in ("local", "global", "knn")}, False),
             FamilySpec({"local": "local_rank", "global": "global_rank"}, False)]
    together = row_statistics(rows, specs, FAST)
    for spec, joint in zip(specs, together):
        alone = family_statistics(rows, spec.columns, spec.higher_is_better, FAST)
        assert (joint.n_used, joint.n_undefined, joint.p, joint.fraction) == (alone.n_used, alone.n_undefined, alone.p, alone.fraction)
        for name in ("means", "improvement"):
            for method, est in getattr(alone, name).items():
                np.testing.assert_allclose(np.array(astuple(getattr(joint, name)[method])), np.array(astuple(est)), rtol=1e-12)
    assert together[2].n_used == rows["global_rank"].notna().sum() == 41 and together[0].n_used == 56


def test_lower_is_better_family_sign():
    frame = pd.DataFrame({"seed": 1, "condition": list("abc"), "local_l2": [1.0, 2.0, 3.0], "global_l2": [2.0, 2.5, 3.5]})
    s = family_statistics(frame, {"local": "local_l2", "global": "global_l2"}, False, FAST)
    assert s.improvement["local"].mean == s.means["global"].mean - s.means["local"].mean == pytest.approx(2 / 3)
    assert s.fraction["local"][3:] == (3, 3)


# --- test sets -----------------------------------------------------------------------------------


def _coverage_frame():
    rows = []
    have = {
        (1, "b1"): {"a", "b", "c", "d"}, (1, "b2"): {"a", "c", "d"}, (1, "b3"): {"a", "b", "d"},
        (2, "b1"): {"e", "f"}, (2, "b2"): {"e", "f", "g"}, (2, "b3"): {"f", "g"},
    }
    for (seed, baseline), conds in have.items():
        for pct in (1.0, 5.0):
            rows += [{"seed": seed, "baseline": baseline, "top_pct": pct, "condition": c} for c in sorted(conds)]
    return pd.DataFrame(rows), have


def test_common_test_set_is_the_intersection():
    df, have = _coverage_frame()
    common = common_test_set(df)
    for seed in (1, 2):
        expected = set.intersection(*(v for (s, _), v in have.items() if s == seed))
        assert set(common.loc[common.seed == seed, "condition"]) == expected
    assert list(common.itertuples(index=False, name=None)) == [(1, "a"), (1, "d"), (2, "f")]
    restricted = restrict_to_test_set(df, "common")
    assert len(restricted) == 3 * 2 * 3  # 3 conditions x 2 K x 3 baselines
    assert len(restrict_to_test_set(df, "per_baseline")) == len(df)


def test_common_test_set_empty_seed_is_an_error():
    df = pd.DataFrame({"seed": [1, 1], "baseline": ["b1", "b2"], "top_pct": 1.0, "condition": ["a", "b"]})
    with pytest.raises(ValueError, match="split seed"):
        restrict_to_test_set(df, "common")


def test_not_predictable_list_names_each_perturbation_and_reason():
    df, _ = _coverage_frame()
    unpredictable = pd.DataFrame({
        "seed": [1, 1, 2], "baseline": ["b2", "b3", "b1"], "condition": ["b", "c", "g"],
        "reason": ["gene not in scGPT vocabulary", "no GO-graph embedding", "gene not measured"],
    })
    out = not_predictable_list(unpredictable, df).set_index(["seed", "condition"])
    assert out.loc[(1, "b"), "reasons"] == "b2: gene not in scGPT vocabulary"
    assert out.loc[(1, "c"), "reasons"] == "b3: no GO-graph embedding"
    assert out.loc[(2, "g"), "reasons"] == "b1: gene not measured"
    assert out.loc[(2, "e"), "reasons"] == "b3: no result rows"  # b3 lacks e without a given reason
    assert len(out) == 4


def test_one_call_for_several_values_equals_separate_calls():
    rng = np.random.default_rng(10)
    frames = [_row_frame(rng.uniform(0, 1, n), rng.uniform(0, 1, n), rng.uniform(0, 1, n), seed=s) for s, n in ((1, 15), (2, 11))]
    rows = pd.concat(frames, ignore_index=True)
    rows.loc[3, "knn_pearson_r"] = np.nan
    s = family_statistics(rows, R_COLUMNS, True, FAST)
    used = rows.drop(index=3)
    per_seed = {m: [g[c].to_numpy() for _, g in used.groupby("seed")] for m, c in R_COLUMNS.items()}
    # the same resamples, so equal up to the rounding of a vectorised mean
    for m in R_COLUMNS:
        ref = pooled_estimate(per_seed[m], FAST)
        assert s.means[m].mean == ref.mean and s.means[m].sd == pytest.approx(ref.sd, rel=1e-12), m
        assert (s.means[m].low, s.means[m].high) == pytest.approx((ref.low, ref.high), rel=1e-12), m
    for m in ("local", "knn"):
        ref = paired_estimate(per_seed[m], per_seed["global"], FAST)
        assert (s.improvement[m].low, s.improvement[m].high) == pytest.approx((ref.low, ref.high), rel=1e-12)
        assert s.improvement[m].mean == s.means[m].mean - s.means["global"].mean
        assert s.improvement[m].sd == pytest.approx(ref.sd, rel=1e-12)


def test_constant_row_among_varying_rows_is_exact():
    a = np.vstack([np.full(6, 0.25), np.arange(6.0)])
    low, high = stratified_bootstrap_cis([a], FAST)
    assert (low[0], high[0]) == (0.25, 0.25)
    assert (low[1], high[1]) == bootstrap_ci(np.arange(6.0), FAST)


def test_rounding_sized_differences_are_ties():
    """The same prediction computed in another chunk may differ in the last bit: not evidence."""
    from lsftbench.evaluation.statistics import signed_rank_p

    noise = np.array([1e-17, -2e-17, 5e-16, 3e-17, -1e-16, 2e-16, 1e-17, 4e-17])
    assert signed_rank_p(noise) == 1.0
    shifted = noise + 0.1
    assert signed_rank_p(shifted) == stats.wilcoxon(shifted).pvalue


def test_repeated_intervals_come_from_the_cache_and_equal_a_fresh_computation():
    from lsftbench.evaluation import statistics as st

    settings = st.StatsSettings(n_resamples=500, seed=3)
    x = np.random.default_rng(0).normal(size=(3, 40))
    first = st.stratified_bootstrap_cis([x], settings)
    st._CI_CACHE.clear()
    fresh = st.stratified_bootstrap_cis([x], settings)
    again = st.stratified_bootstrap_cis([x.copy()], settings)
    for a, b, c in zip(first, fresh, again):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert st.stratified_bootstrap_cis([x[:2]], settings)[0].shape == (2,)
