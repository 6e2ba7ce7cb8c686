"""Leaderboard and model comparisons (SPEC 7, 7.1, 7.3) on hand-built comparison frames, with known answers.

A comparison frame holds one row per (seed, method, test perturbation), every method on one gene set (the
frame :func:`lsftbench.report.aggregate.dataset_frames` builds); the leaderboard takes it with each seed's
progress-bar table of the same frame (its WAP and BAP).
"""

import numpy as np
import pandas as pd
import pytest

from lsftbench.evaluation import statistics
from lsftbench.evaluation.progress_bar import (
    IDEALIZED,
    NO_CHANGE,
    NULL_METHODS,
    RANDOM_PERT,
    TRAIN_MEAN,
    pool_progress_bars,
    progress_bar_table,
)
from lsftbench.evaluation.registry import label
from lsftbench.evaluation.statistics import StatsSettings, pooled_signed_rank_p, stratified_bootstrap_ci
from lsftbench.report.leaderboard import leaderboard_table, model_comparisons

METRICS = ("pearson_r", "l2", "ds_l1")
STATS = StatsSettings(n_resamples=499, seed=0)
MODEL, GLOBAL, LSFT, KNN = "my model", "b · global fit", "b · LSFT top 5%", "b · kNN top 5%"
#: method → (kind, baseline, top %, level of r, of L2, of ds_l1)
METHODS = {
    MODEL: ("external model", "my model", np.nan, 0.55, 5.0, 0.80),
    GLOBAL: ("global fit", "b", np.nan, 0.50, 6.0, 0.75),
    LSFT: ("LSFT", "b", 5.0, 0.60, 5.5, 0.80),
    KNN: ("kNN", "b", 5.0, 0.45, 6.5, 0.70),
    TRAIN_MEAN: ("null method", "", np.nan, 0.20, 9.0, 0.50),
    NO_CHANGE: ("null method", "", np.nan, np.nan, 10.0, 0.50),
    RANDOM_PERT: ("null method", "", np.nan, 0.10, 9.5, 0.60),
    IDEALIZED: ("uses test data", "", np.nan, 0.90, 2.0, 0.95),
}
#: Each seed's common test set (overlapping, as split seeds are).
SEED_CONDS = {1: [f"g{i:02d}+ctrl" for i in range(8)], 2: [f"g{i:02d}+ctrl" for i in range(4, 12)]}
COMPETING = (MODEL, GLOBAL, LSFT, KNN)


def _rows(seed, method, kind, baseline, top_pct, conditions, **metrics):
    return pd.DataFrame({"seed": seed, "method": method, "kind": kind, "baseline": baseline, "top_pct": float(top_pct),
                         "condition": list(conditions),
                         **{k: np.asarray(v, dtype=np.float64) for k, v in metrics.items()}})


def _frame(rng_seed=0, seeds=(1, 2)):
    """Every method of :data:`METHODS` on every seed's perturbations: its levels plus noise."""
    rng = np.random.default_rng(rng_seed)
    parts = []
    for seed in seeds:
        conds = SEED_CONDS[seed]
        n = len(conds)
        for method, (kind, baseline, pct, r, l2, ds) in METHODS.items():
            parts.append(_rows(seed, method, kind, baseline, pct, conds, pearson_r=r + 0.1 * rng.normal(size=n),
                               l2=l2 + rng.normal(size=n), ds_l1=np.clip(ds + 0.05 * rng.normal(size=n), 0, 1)))
    return pd.concat(parts, ignore_index=True)


def _ceiling():
    """A noise ceiling of every perturbation that binds (below the idealized bound) for r, not for L2."""
    conds = sorted({c for cs in SEED_CONDS.values() for c in cs})
    return pd.DataFrame({"condition": conds, "pearson_r": np.linspace(0.7, 0.8, len(conds)), "l2": 1.0})


def _progress(frame, ceiling=None, metrics=METRICS):
    return {int(s): progress_bar_table(g, ceiling, metrics=metrics) for s, g in frame.groupby("seed", sort=True)}


def _put(frame, seed, method, condition, metric, value):
    mask = (frame.seed == seed) & (frame.method == method) & (frame.condition == condition)
    assert mask.sum() == 1
    frame.loc[mask, metric] = value


def _copy_of(frame, method, name, kind, baseline, top_pct):
    return frame[frame.method == method].assign(method=name, kind=kind, baseline=baseline, top_pct=float(top_pct))


# ---------------------------------------------------------------------------------------------------
# (a) identical methods tie


def test_a_method_identical_to_another_ties():
    frame = _frame()
    frame = pd.concat([frame, _copy_of(frame, LSFT, "c · LSFT top 5%", "LSFT", "c", 5.0)], ignore_index=True)
    table = leaderboard_table(frame, _progress(frame), stats=STATS).set_index("Method")
    a, b = table.loc[LSFT], table.loc["c · LSFT top 5%"]
    columns = [c for c in table.columns if c.startswith(("Pearson r", "L2", "Discrimination (L1)", "% of gap closed"))]
    assert len(columns) > 12
    for column in columns:
        assert a[column] == pytest.approx(b[column], nan_ok=True, abs=1e-15), column
    # adjacent places, the tie broken by name
    assert abs(a["Position"] - b["Position"]) == 1 and a["Position"] < b["Position"]
    # the best linear method is the first of the tied pair; the copy's paired difference is exactly 0
    assert a["Best linear method"] == LSFT
    column = "vs best linear (Pearson r)"
    assert (b[column], b[f"{column} CI low"], b[f"{column} CI high"]) == (0.0, 0.0, 0.0)
    assert b[f"{column} SD (seeds)"] == 0.0
    assert b[f"p ({column})"] == 1.0 and b[f"q ({column})"] == 1.0  # not significant
    assert np.isnan(a[f"p ({column})"])


def test_a_model_identical_to_a_linear_method_has_zero_difference():
    frame = _frame()
    twin = _copy_of(frame, GLOBAL, "twin", "external model", "twin", np.nan)
    twin["l2"] += 1e-14  # rounding: within the tie tolerance of the signed-rank test
    frame = pd.concat([frame, twin], ignore_index=True)
    out = model_comparisons(frame, STATS)
    rows = out[(out.Model == "twin") & (out["Compared with"] == GLOBAL)].set_index("Metric")
    assert list(rows.index) == [label(m) for m in ("pearson_r", "l2", "mae", "ds_l1") if m in frame.columns]
    np.testing.assert_allclose(rows[["Model - other", "Model - other CI low", "Model - other CI high"]], 0.0,
                               atol=1e-13)
    assert (rows["p"] == 1.0).all()
    assert (rows["Perturbations"] == 16).all()
    assert (rows["Kind"] == "global fit").all()
    # against another method the twin's difference is that method's: the global fit's minus LSFT's
    vs_lsft = out[(out.Model == "twin") & (out["Compared with"] == LSFT)].set_index("Metric")
    diff = frame[frame.method == GLOBAL].pearson_r.to_numpy() - frame[frame.method == LSFT].pearson_r.to_numpy()
    assert vs_lsft.loc["Pearson r", "Model - other"] == pytest.approx(
        np.mean([diff[:8].mean(), diff[8:].mean()]))


# ---------------------------------------------------------------------------------------------------
# (b) the leaderboard's % of gap closed is the progress bar's


@pytest.mark.parametrize("metric", METRICS)
def test_gap_closed_equals_the_progress_bar_per_seed_and_pooled(metric):
    frame = _frame()
    # undefined values, as in real runs: every mean leaves those perturbations out (for every method)
    _put(frame, 1, LSFT, "g02+ctrl", "pearson_r", np.nan)
    _put(frame, 2, IDEALIZED, "g09+ctrl", "ds_l1", np.nan)
    _put(frame, 2, MODEL, "g05+ctrl", "l2", np.nan)
    ceiling = _ceiling()
    progress = _progress(frame, ceiling)
    name = label(metric)
    gap = f"% of gap closed ({name})"
    for seed, bar in progress.items():
        table = leaderboard_table(frame, progress, stats=STATS, seed=seed).set_index("Method")
        bar = bar[bar.Metric == name]
        assert len(bar) == len(COMPETING)
        for method, score, closed in zip(bar["Baseline"] + "|" + bar["Top %"] + "|" + bar["Method"], bar["Score"],
                                         bar["% of gap closed"]):
            own = _method_of(method)
            assert table.loc[own, name] == pytest.approx(score, rel=1e-12)
            assert table.loc[own, gap] == pytest.approx(closed, rel=1e-12)
            assert np.isfinite(closed)
        # the bounds' own rows: the progress bar's means of them
        for bound in (*NULL_METHODS, IDEALIZED):
            assert table.loc[bound, name] == pytest.approx(bar[bound].iloc[0], nan_ok=True)
    pooled = leaderboard_table(frame, progress, stats=STATS).set_index("Method")
    bars = pool_progress_bars(list(progress.values()))
    bars = bars[bars.Metric == name]
    for key, closed, sd, score in zip(bars["Baseline"] + "|" + bars["Top %"] + "|" + bars["Method"],
                                      bars["% of gap closed"], bars["% of gap closed SD"], bars["Score"]):
        own = _method_of(key)
        assert pooled.loc[own, gap] == pytest.approx(closed, rel=1e-12)
        assert pooled.loc[own, f"{gap} SD (seeds)"] == pytest.approx(sd, rel=1e-12)
        assert pooled.loc[own, name] == pytest.approx(score, rel=1e-12)


def _method_of(key):
    """The comparison-frame method of a progress-bar row (Baseline|Top %|Method)."""
    return {"my model|external|external": MODEL, "b|global|global": GLOBAL, "b|5%|LSFT": LSFT,
            "b|5%|kNN": KNN}[key]


def test_gap_closed_known_answer():
    """Two perturbations, one seed: r — WAP train mean 0.2, BAP idealized 0.9 (no ceiling); the global fit's 0.55
    closes 50 %; L2 — WAP 9, BAP 2, the global fit's 5.5 closes 50 %."""
    conds = ["a+ctrl", "b+ctrl"]
    frame = pd.concat([
        _rows(1, GLOBAL, "global fit", "b", np.nan, conds, pearson_r=[0.5, 0.6], l2=[5.0, 6.0]),
        _rows(1, TRAIN_MEAN, "null method", "", np.nan, conds, pearson_r=[0.2, 0.2], l2=[9.0, 9.0]),
        _rows(1, NO_CHANGE, "null method", "", np.nan, conds, pearson_r=[np.nan, np.nan], l2=[10.0, 10.0]),
        _rows(1, IDEALIZED, "uses test data", "", np.nan, conds, pearson_r=[0.9, 0.9], l2=[2.0, 2.0]),
    ], ignore_index=True)
    table = leaderboard_table(frame, _progress(frame, metrics=("pearson_r", "l2")), stats=STATS, seed=1)
    table = table.set_index("Method")
    assert table.loc[GLOBAL, "% of gap closed (Pearson r)"] == pytest.approx(50.0)
    assert table.loc[GLOBAL, "% of gap closed (L2)"] == pytest.approx(50.0)
    assert table.loc[TRAIN_MEAN, "% of gap closed (Pearson r)"] == pytest.approx(0.0)
    assert table.loc[IDEALIZED, "% of gap closed (L2)"] == pytest.approx(100.0)
    assert np.isnan(table.loc[NO_CHANGE, "Pearson r"]) and np.isnan(table.loc[NO_CHANGE, "% of gap closed (Pearson r)"])
    assert table.loc[NO_CHANGE, "% of gap closed (L2)"] == pytest.approx(100 * (10 - 9) / (2 - 9))
    assert list(table["Position"]) == [1, 2, 3, 4]
    assert list(table.index) == [IDEALIZED, GLOBAL, TRAIN_MEAN, NO_CHANGE]  # by r, undefined last
    assert table.loc[GLOBAL, "Perturbations"] == "2 (seed 1)"


# ---------------------------------------------------------------------------------------------------
# (c) undefined values and fewer perturbations: every mean over the bounds' perturbations


def test_undefined_values_leave_a_perturbation_out_of_every_mean():
    frame = _frame()
    _put(frame, 1, LSFT, "g02+ctrl", "pearson_r", np.nan)  # one method, one perturbation, one seed
    progress = _progress(frame)
    table = leaderboard_table(frame, progress, stats=STATS).set_index("Method")
    for method in COMPETING + (TRAIN_MEAN, RANDOM_PERT, IDEALIZED):
        rows = frame[frame.method == method]
        s1 = rows[(rows.seed == 1) & (rows.condition != "g02+ctrl")].pearson_r.mean()
        s2 = rows[rows.seed == 2].pearson_r.mean()
        assert table.loc[method, "Pearson r"] == pytest.approx((s1 + s2) / 2, rel=1e-12), method
        # L2 is defined everywhere: all 8 perturbations of each seed
        l2 = np.mean([rows[rows.seed == s].l2.mean() for s in (1, 2)])
        assert table.loc[method, "L2"] == pytest.approx(l2, rel=1e-12), method
        assert table.loc[method, "Undefined (Pearson r)"] == 1 and table.loc[method, "Undefined (L2)"] == 0
    assert np.isnan(table.loc[NO_CHANGE, "Pearson r"])
    # the progress bar's bounds are over the same 7 perturbations of seed 1
    bar = progress[1].set_index(["Method", "Metric"]).loc[("global", "Pearson r")]
    assert bar["Perturbations"] == 7
    t1 = frame[(frame.seed == 1) & (frame.condition != "g02+ctrl")]
    assert bar["WAP"] == pytest.approx(t1[t1.method == TRAIN_MEAN].pearson_r.mean())
    assert bar["BAP"] == pytest.approx(t1[t1.method == IDEALIZED].pearson_r.mean())
    # the paired comparison with the best linear method is over the same perturbations: its mean is the
    # difference of the two means of the table
    best = table.loc[GLOBAL, "Best linear method"]
    for method in (MODEL, GLOBAL, KNN, IDEALIZED):
        if method != best:
            assert table.loc[method, "vs best linear (Pearson r)"] == pytest.approx(
                table.loc[method, "Pearson r"] - table.loc[best, "Pearson r"], rel=1e-9)


def test_a_method_scored_on_fewer_perturbations_is_compared_over_the_bounds_perturbations():
    """A competing method without a row for one perturbation (fewer perturbations than the bounds): its mean and
    the bounds' must still be over one set of perturbations (SPEC 7.1: left out of every mean it is compared with)."""
    frame = _frame(seeds=(1,))
    frame = frame[~((frame.method == MODEL) & (frame.condition == "g03+ctrl"))].reset_index(drop=True)
    progress = _progress(frame)
    table = leaderboard_table(frame, progress, stats=STATS, seed=1).set_index("Method")
    shared = [c for c in SEED_CONDS[1] if c != "g03+ctrl"]  # the perturbations every method has
    on_shared = frame[frame.condition.isin(shared)].groupby("method").pearson_r.mean()
    bar = progress[1].set_index(["Method", "Metric"]).loc[("external", "Pearson r")]
    # the bounds and the model's mean over the same perturbations
    assert bar["Score"] == pytest.approx(on_shared[MODEL], rel=1e-12)
    assert bar["WAP"] == pytest.approx(on_shared[TRAIN_MEAN], rel=1e-12)
    assert bar["BAP"] == pytest.approx(on_shared[IDEALIZED], rel=1e-12)
    assert table.loc[MODEL, "Pearson r"] == pytest.approx(on_shared[MODEL], rel=1e-12)
    assert table.loc[GLOBAL, "Pearson r"] == pytest.approx(on_shared[GLOBAL], rel=1e-12)


# ---------------------------------------------------------------------------------------------------
# (d) the bootstrap: seeded, and the joint estimates equal separate ones


def _ci_columns(table):
    return [c for c in table.columns if c.endswith((" CI low", " CI high"))]


def test_seeded_bootstrap_reproduces_and_another_seed_differs(monkeypatch):
    frame = _frame()
    progress = _progress(frame)
    runs = []
    for seed in (0, 0, 1):
        monkeypatch.setattr(statistics, "_CI_CACHE", {})  # recompute: no interval from an earlier call
        settings = StatsSettings(n_resamples=499, seed=seed)
        runs.append((leaderboard_table(frame, progress, stats=settings), model_comparisons(frame, settings)))
    (board0, comp0), (board0b, comp0b), (board1, comp1) = runs
    pd.testing.assert_frame_equal(board0, board0b)
    pd.testing.assert_frame_equal(comp0, comp0b)
    cis = _ci_columns(board0)
    means = [c for c in board0.columns if c not in cis]
    pd.testing.assert_frame_equal(board0[means], board1[means])  # everything but the intervals is the same
    a, b = board0[cis].to_numpy(dtype=float), board1[cis].to_numpy(dtype=float)
    finite = np.isfinite(a)
    assert finite.sum() > 30
    assert np.array_equal(finite, np.isfinite(b))
    assert (a[finite] != b[finite]).mean() > 0.9  # (almost) every interval moves with the seed
    ca, cb = comp0[_ci_columns(comp0)].to_numpy(dtype=float), comp1[_ci_columns(comp1)].to_numpy(dtype=float)
    assert (ca != cb).all()
    pd.testing.assert_frame_equal(comp0.drop(columns=_ci_columns(comp0)), comp1.drop(columns=_ci_columns(comp1)))


def test_joint_bootstrap_intervals_equal_separate_calls():
    """The leaderboard bootstraps every method of one metric in one call: each row's interval must be that of a
    separate stratified bootstrap of its own per-seed values (same seed, same resampled perturbations)."""
    frame = _frame()
    _put(frame, 1, LSFT, "g02+ctrl", "pearson_r", np.nan)
    table = leaderboard_table(frame, _progress(frame), stats=STATS).set_index("Method")
    for metric in METRICS:
        name = label(metric)
        for method in COMPETING + (TRAIN_MEAN, RANDOM_PERT, IDEALIZED):
            rows = frame[frame.method == method]
            if metric == "pearson_r":
                rows = rows[~((rows.seed == 1) & (rows.condition == "g02+ctrl"))]
            per_seed = [rows[rows.seed == s].sort_values("condition")[metric].to_numpy() for s in (1, 2)]
            low, high = stratified_bootstrap_ci(per_seed, STATS)
            assert (table.loc[method, f"{name} CI low"], table.loc[method, f"{name} CI high"]) == (
                pytest.approx(low, rel=1e-12), pytest.approx(high, rel=1e-12)), (method, metric)
            assert table.loc[method, f"{name} SD (seeds)"] == pytest.approx(np.std([v.mean() for v in per_seed], ddof=1))
    # the paired differences with the best linear method, likewise, and their Wilcoxon p
    best = table["Best linear method"].iloc[0]
    ref = frame[frame.method == best]
    for method in (MODEL, GLOBAL, KNN):
        if method == best:
            continue
        d = []
        for s in (1, 2):
            mine = frame[(frame.method == method) & (frame.seed == s)].set_index("condition").pearson_r
            theirs = ref[ref.seed == s].set_index("condition").pearson_r
            diff = (mine - theirs).dropna().sort_index()
            d.append(diff)
        low, high = stratified_bootstrap_ci([x.to_numpy() for x in d], STATS)
        column = "vs best linear (Pearson r)"
        assert table.loc[method, f"{column} CI low"] == pytest.approx(low, rel=1e-12)
        assert table.loc[method, f"{column} CI high"] == pytest.approx(high, rel=1e-12)
        seeds = np.concatenate([np.full(len(x), s) for s, x in zip((1, 2), d)])
        conds = np.concatenate([x.index.to_numpy() for x in d])
        assert table.loc[method, f"p ({column})"] == pytest.approx(
            pooled_signed_rank_p(seeds, conds, np.concatenate([x.to_numpy() for x in d])))


def test_model_comparisons_known_answers():
    """One seed; the model is better than the global fit by 0.01·(1..6) in r and 1 in L2 at every perturbation."""
    conds = [f"p{i}+ctrl" for i in range(6)]
    base_r = np.array([0.3, 0.5, 0.4, 0.6, 0.2, 0.7])
    frame = pd.concat([
        _rows(1, MODEL, "external model", MODEL, np.nan, conds, pearson_r=base_r + 0.01 * np.arange(1, 7),
              l2=np.full(6, 4.0)),
        _rows(1, GLOBAL, "global fit", "b", np.nan, conds, pearson_r=base_r, l2=np.full(6, 5.0)),
        _rows(1, TRAIN_MEAN, "null method", "", np.nan, conds, pearson_r=np.full(6, 0.1), l2=np.full(6, 9.0)),
    ], ignore_index=True)
    out = model_comparisons(frame, STATS, metrics=("pearson_r", "l2")).set_index("Metric")
    assert list(out["Compared with"]) == [GLOBAL, GLOBAL]  # linear methods only, never the nulls
    assert "Model - other SD (seeds)" not in out.columns  # one seed
    r, l2 = out.loc["Pearson r"], out.loc["L2"]
    assert r["Model - other"] == pytest.approx(0.035)
    low, high = stratified_bootstrap_ci([0.01 * np.arange(1, 7)], STATS)
    assert (r["Model - other CI low"], r["Model - other CI high"]) == (pytest.approx(low), pytest.approx(high))
    assert 0.0099 < low < 0.035 < high < 0.0601
    assert r["p"] == pytest.approx(2 / 2**6)  # exact two-sided signed-rank p: all 6 differences positive
    # L2: lower is better, so positive = the model is better; constant difference: the interval is the point
    assert (l2["Model - other"], l2["Model - other CI low"], l2["Model - other CI high"]) == (1.0, 1.0, 1.0)
    assert l2["p"] == pytest.approx(2 / 2**6)
    np.testing.assert_allclose(out["q"], [2 / 2**6, 2 / 2**6])  # BH within each metric (one row each)
    assert (out["Perturbations"] == 6).all()
    empty = model_comparisons(frame[frame.kind != "external model"], STATS)
    assert empty.empty and "Model - other" in empty.columns


def test_primary_metric_lower_is_better_orders_and_signs():
    """With L2 as the primary metric the rows go from the lowest L2 up, and ``vs best linear`` is positive for a
    method with a lower L2 than the best linear method (positive = better)."""
    frame = _frame()
    table = leaderboard_table(frame, _progress(frame), primary="l2", stats=STATS).set_index("Method")
    ordered = table.sort_values("Position")
    assert ordered["L2"].is_monotonic_increasing
    linear = table[table.Kind.isin(["global fit", "LSFT", "kNN"])]
    best = linear["L2"].idxmin()
    assert (table["Best linear method"] == best).all()
    column = "vs best linear (L2)"
    for method in table.index.drop(best):
        assert table.loc[method, column] == pytest.approx(table.loc[best, "L2"] - table.loc[method, "L2"], rel=1e-9)
    assert table.loc[IDEALIZED, column] > 0 and table.loc[TRAIN_MEAN, column] < 0
