"""The LSFT note's tables (SPEC 7.1-8) on hand-made rows with known answers."""

import io

import numpy as np
import pandas as pd
import pytest

from lsftbench.data.mean_expression import top_expressed
from lsftbench.evaluation.metrics import pearson_columns, perturbation_metrics, rank_metrics
from lsftbench.evaluation.statistics import StatsSettings, bh_qvalues, wilson_ci
from lsftbench.report.tables import (
    combined_table,
    de_metrics_table,
    fraction_improved_table,
    per_perturbation,
    performance_table,
    subgroup_de_metrics_table,
    subgroup_performance_table,
    summary_table,
)
from lsftbench.report.markdown import to_markdown
from lsftbench.report.notes import fraction_note, performance_note, protocol_label, subgroup_note

FAST = StatsSettings(n_resamples=499, seed=3)
NOTE_COLUMNS = [
    "Baseline", "Top %", "Local Pearson r", "Baseline Pearson r", "Improvement (r)", "Local L2",
    "Baseline L2", "Improvement (L2)", "Train Size", "Mean Similarity",
]


def _rows():
    lsft = pd.DataFrame(
        {
            "dataset": "d",
            "protocol": "default",
            "seed": 1,
            "baseline": ["b1", "b1", "b1", "b1"],
            "top_pct": [1.0, 1.0, 5.0, 5.0],
            "condition": ["X+ctrl", "Y+ctrl", "X+ctrl", "Y+ctrl"],
            "local_pearson_r": [0.5, 0.9, 0.7, 0.1],
            "local_l2": [2.0, 1.0, 1.5, 3.0],
            "local_pearson_delta_top1000": [0.5, 0.9, 0.7, 0.1],
            "local_l2_top1000": [2.0, 1.0, 1.5, 3.0],
            "knn_pearson_r": [0.4, 0.8, 0.6, 0.6],
            "knn_l2": [2.5, 1.0, 1.0, 1.0],
            "knn_pearson_delta_top1000": [0.4, 0.8, 0.6, 0.6],
            "knn_l2_top1000": [2.5, 1.0, 1.0, 1.0],
            "train_size": [12, 12, 60, 60],
            "mean_similarity": [0.9, 0.8, 0.7, 0.6],
            "n_genes": 10,
        }
    )
    glob = pd.DataFrame(
        {
            "seed": 1,
            "baseline": ["b1", "b1"],
            "condition": ["X+ctrl", "Y+ctrl"],
            "pearson_r": [0.6, 0.5],
            "l2": [1.8, 2.0],
            "pearson_delta_top1000": [0.6, 0.5],
            "l2_top1000": [1.8, 2.0],
        }
    )
    return per_perturbation(lsft, glob)


def _synthetic(seeds=(1, 2), baselines=("b1", "b2", "b3"), pcts=(1.0, 5.0), n=24, shift=0.1, n_genes=1500, nan_rate=0.1, rng_seed=0, global_nan_every=17):
    """Per-perturbation rows with a known LSFT gain ``shift`` (plus noise) and NaN Pearson r scattered in."""
    rng = np.random.default_rng(rng_seed)
    lsft, glob = [], []
    for seed in seeds:
        conds = [f"G{seed}_{i}+ctrl" for i in range(n)] + [f"S{i}+ctrl" for i in range(4)]  # S*: tested in every seed
        for b in baselines:
            g_r, g_l2 = rng.uniform(0.2, 0.7, len(conds)), rng.uniform(1, 3, len(conds))
            glob.append(pd.DataFrame({"seed": seed, "baseline": b, "condition": conds, "pearson_r": g_r, "l2": g_l2,
                                      "pearson_delta_top1000": g_r + 0.05, "l2_top1000": g_l2 / 2, "synthetic_stand_in": ""}))
            for pct in pcts:
                noise = rng.normal(0, 0.02, len(conds))
                local_r = g_r + shift + noise
                local_r[rng.uniform(size=len(conds)) < nan_rate] = np.nan
                knn_r = g_r + rng.normal(0, 0.05, len(conds))
                knn_r[rng.uniform(size=len(conds)) < nan_rate] = np.nan
                lsft.append(pd.DataFrame({
                    "dataset": "d", "protocol": "default", "seed": seed, "baseline": b, "top_pct": pct, "condition": conds,
                    "local_pearson_r": local_r, "knn_pearson_r": knn_r, "local_l2": g_l2 - shift + noise, "knn_l2": g_l2 + 0.01,
                    "local_pearson_delta_top1000": local_r + 0.05, "knn_pearson_delta_top1000": knn_r + 0.05,
                    "local_l2_top1000": (g_l2 - shift) / 2, "knn_l2_top1000": g_l2 / 2,
                    "train_size": int(np.ceil(30 * pct / 100)) + seed, "n_train_candidates": 30,
                    "mean_similarity": rng.uniform(0, 1, len(conds)), "neighbours": "", "n_genes": n_genes,
                }))
    glob = pd.concat(glob, ignore_index=True)
    # a NaN global r makes that perturbation undefined for every LSFT row of its baseline
    if global_nan_every:
        glob.loc[glob.index[::global_nan_every], "pearson_r"] = np.nan
    return per_perturbation(pd.concat(lsft, ignore_index=True), glob)


def test_improvements_and_means():
    df = _rows()
    np.testing.assert_allclose(df["improvement_r"], [-0.1, 0.4, 0.1, -0.4])
    np.testing.assert_allclose(df["improvement_l2"], [-0.2, 1.0, 0.3, -1.0])
    np.testing.assert_allclose(df["knn_improvement_l2"], [-0.7, 1.0, 0.8, 1.0])
    for seed in (1, None):  # the per-seed table and the pooled table of a single seed agree
        perf = performance_table(df, seed=seed, stats=FAST)
        assert [c for c in perf.columns if c in NOTE_COLUMNS] == NOTE_COLUMNS
        assert list(perf.columns[:5]) == ["Baseline", "Top %", "Local Pearson r", "Local Pearson r CI low", "Local Pearson r CI high"]
        row = perf.set_index("Top %").loc["1%"]
        expected = {"Local Pearson r": 0.7, "Baseline Pearson r": 0.55, "Improvement (r)": 0.15,
                    "Improvement (L2)": 0.4, "Mean Similarity": 0.85, "Test Perturbations": 2, "Train Size": 12}
        for col, value in expected.items():
            assert row[col] == pytest.approx(value, abs=1e-12), col
    per_seed = performance_table(df, seed=1, stats=FAST)
    assert "Seeds" not in per_seed.columns and not any(c.endswith("SD (seeds)") for c in per_seed.columns)
    assert "Seeds" in perf.columns and "Local Pearson r SD (seeds)" in perf.columns


def test_train_size_is_an_integer_column():
    perf = performance_table(_rows(), seed=1, stats=FAST)
    assert perf["Train Size"].dtype.kind == "i"
    csv = io.StringIO()
    perf[NOTE_COLUMNS].to_csv(csv, index=False)
    assert csv.getvalue().splitlines()[1].split(",")[8] == "12"
    assert "| 12 | 0.8500 |" in to_markdown(perf)


def test_fraction_improved_strictly_positive_with_wilson_interval():
    frac = fraction_improved_table(_rows(), stats=FAST).set_index("Top %")
    assert frac.loc["1%", "Fraction Improved (Pearson r)"] == 0.5
    assert frac.loc["5%", "Fraction Improved (L2)"] == 0.5
    assert frac.loc["5%", "kNN Fraction Improved (L2)"] == 1.0  # 2.0 - 1.0 > 0 and 1.8 - 1.0 > 0
    low, high = wilson_ci(1, 2)
    assert frac.loc["1%", "Fraction Improved (Pearson r) CI low"] == low
    assert frac.loc["1%", "Fraction Improved (Pearson r) CI high"] == high
    assert frac.loc["1%", "Perturbations Counted (r)"] == 2


def test_markdown_formats_fractions_as_percent_with_interval():
    md = to_markdown(fraction_improved_table(_rows(), stats=FAST), title="T")
    low, high = wilson_ci(1, 2)
    assert f"| b1 | 1% | 50.00% [{100 * low:.2f}%, {100 * high:.2f}%] |" in md and md.startswith("## T")
    assert "CI low" not in md


def test_markdown_folds_intervals_into_cells():
    perf = performance_table(_rows(), seed=1, stats=FAST)
    md = to_markdown(perf)
    header = md.splitlines()[0]
    assert "CI" not in header and header.startswith("| " + " | ".join(NOTE_COLUMNS))
    r = perf.iloc[0]
    cell = f"{r['Local Pearson r']:.4f} [{r['Local Pearson r CI low']:.4f}, {r['Local Pearson r CI high']:.4f}]"
    assert f"| b1 | 1% | {cell} |" in md
    pooled = to_markdown(performance_table(_synthetic(n=8), stats=FAST))
    assert "(SD " in pooled and "SD (seeds)" not in pooled.splitlines()[0]


def test_improvement_equals_local_minus_baseline_exactly_on_every_row():
    df = _synthetic()
    assert df["local_pearson_r"].isna().any() and df["global_pearson_r"].isna().any()
    for seed in (1, 2, None):
        perf = performance_table(df, seed=seed, stats=FAST)
        assert (perf["Undefined (r)"] > 0).all()
        for fam, sign in (("Pearson r", 1), ("L2", -1), ("Pearson r (top 1000)", 1), ("L2 (top 1000)", -1)):
            key = {"Pearson r": "r", "L2": "L2"}.get(fam, fam.replace("Pearson r (top 1000)", "r, top 1000").replace("L2 (top 1000)", "L2, top 1000"))
            diff = perf[f"Local {fam}"] - perf[f"Baseline {fam}"]
            knn = perf[f"kNN {fam}"] - perf[f"Baseline {fam}"]
            assert (perf[f"Improvement ({key})"] == sign * diff).all(), fam
            assert (perf[f"kNN Improvement ({key})"] == sign * knn).all(), fam


def test_means_are_over_the_perturbations_where_every_method_is_defined():
    df = _synthetic()
    perf = performance_table(df, seed=1, stats=FAST).set_index(["Baseline", "Top %"])
    common = set.intersection(*(set(g["condition"]) for _, g in df[df.seed == 1].groupby(["baseline", "top_pct"])))
    rows = df[(df.seed == 1) & (df.baseline == "b2") & (df.top_pct == 5.0) & df.condition.isin(common)]
    ok = rows[["local_pearson_r", "global_pearson_r", "knn_pearson_r"]].notna().all(axis=1)
    row = perf.loc[("b2", "5%")]
    assert row["Undefined (r)"] == (~ok).sum() and row["Test Perturbations"] == len(rows)
    for col, src in (("Local Pearson r", "local_pearson_r"), ("Baseline Pearson r", "global_pearson_r"), ("kNN Pearson r", "knn_pearson_r")):
        assert row[col] == pytest.approx(rows.loc[ok, src].mean(), rel=1e-12), col
    assert row["Local L2"] == pytest.approx(rows["local_l2"].mean(), rel=1e-12)  # L2 is defined everywhere


def test_known_shift_is_significant_and_no_change_is_not():
    perf = performance_table(_synthetic(n=30, nan_rate=0.0), stats=FAST)
    assert (perf["Improvement (r) CI low"] > 0).all() and (perf["Improvement (r) CI high"] < 0.2).all()
    assert (perf["q (LSFT vs global, r)"] < 0.05).all() and (perf["q (LSFT vs global, L2)"] < 0.05).all()
    flat = performance_table(_synthetic(n=30, nan_rate=0.0, shift=0.0), seed=1, stats=FAST)
    # local r = global r + noise: no systematic gain
    assert ((flat["Improvement (r) CI low"] < 0) & (flat["Improvement (r) CI high"] > 0)).mean() >= 0.5
    np.testing.assert_array_equal(perf["q (LSFT vs kNN, r)"], bh_qvalues(perf["p (LSFT vs kNN, r)"]))


def test_lsft_identical_to_global_gives_p_one():
    df = _rows()
    df["local_pearson_r"] = df["global_pearson_r"]
    perf = performance_table(df, seed=1, stats=FAST)
    assert (perf["p (LSFT vs global, r)"] == 1.0).all() and (perf["q (LSFT vs global, r)"] == 1.0).all()
    assert (perf["Improvement (r) CI low"] <= 0).all() and (perf["Improvement (r) CI high"] >= 0).all()


def test_pooled_means_are_means_of_per_seed_means():
    df = _synthetic()
    pooled = performance_table(df, stats=FAST).set_index(["Baseline", "Top %"])
    per_seed = [performance_table(df, seed=s, stats=FAST).set_index(["Baseline", "Top %"]) for s in (1, 2)]
    for col in ("Local Pearson r", "Baseline L2", "kNN Pearson r", "Improvement (r)", "Mean Similarity"):
        np.testing.assert_allclose(pooled[col], (per_seed[0][col] + per_seed[1][col]) / 2, rtol=1e-12)
    for col in ("Local Pearson r", "Baseline L2", "Improvement (L2)"):  # SD (ddof=1) of two values = |a - b| / sqrt(2)
        np.testing.assert_allclose(pooled[col + " SD (seeds)"], np.abs(per_seed[0][col] - per_seed[1][col]) / np.sqrt(2), rtol=1e-9)
    np.testing.assert_array_equal(pooled["Test Perturbations"], per_seed[0]["Test Perturbations"] + per_seed[1]["Test Perturbations"])
    assert (pooled["Seeds"] == 2).all()
    # train sizes 2 and 3 (1 %), 3 and 4 (5 %): the mean rounded half up
    assert list(per_seed[0]["Train Size"]) == [2, 3] * 3 and list(pooled["Train Size"]) == [3, 4] * 3


def test_common_and_per_baseline_test_sets():
    df = _synthetic(n=8)
    drop = (df.baseline == "b3") & (df.condition == "G1_0+ctrl")
    df = df[~drop]
    common = performance_table(df, seed=1, stats=FAST)
    per_baseline = performance_table(df, seed=1, test_set="per_baseline", stats=FAST)
    assert (common["Test Perturbations"] == 11).all()
    np.testing.assert_array_equal(per_baseline["Test Perturbations"], [12, 12, 12, 12, 11, 11])
    assert "11 of 12 (seed 1)" in performance_note(df, "d", seed=1, stats=FAST)
    assert "every test perturbation it can predict" in performance_note(df, "d", seed=1, test_set="per_baseline")


def _with_subgroups(df):
    """The synthetic rows with GEARS subgroups: G*_0..3 combo_seen0, G*_4.. combo_seen2 (seed 1 only has
    combo_seen1: G1_20..23), S* unseen_single."""
    def group(row):
        name = row.condition
        if name.startswith("S"):
            return "unseen_single"
        i = int(name.split("_")[1].split("+")[0])
        if row.seed == 1 and i >= 20:
            return "combo_seen1"
        return "combo_seen0" if i < 4 else "combo_seen2"
    return df.assign(subgroup=[group(r) for r in df[["seed", "condition"]].itertuples()])


@pytest.mark.parametrize("seed", [1, None])
def test_subgroup_table_is_the_performance_table_of_each_subgroup(seed):
    df = _with_subgroups(_synthetic(n=24))
    drop = (df.baseline == "b3") & (df.condition == "G1_5+ctrl")  # not predictable by b3: out of the common set
    df = df[~drop]
    table = subgroup_performance_table(df, seed=seed, stats=FAST)
    groups = list(dict.fromkeys(table["Subgroup"]))
    assert groups == ["all", "combo_seen0", "combo_seen1", "combo_seen2", "unseen_single"]
    overall = performance_table(df, seed=seed, stats=FAST)
    pd.testing.assert_frame_equal(table[table.Subgroup == "all"].drop(columns="Subgroup").reset_index(drop=True),
                                  overall)  # the all rows are lsft_performance's, q-values included
    common = df[df.condition != "G1_5+ctrl"]
    for group in groups[1:]:
        rows = common[common.subgroup == group]
        expected = performance_table(rows, seed=seed, stats=FAST)  # same seeded statistics on the subgroup alone
        got = table[table.Subgroup == group].drop(columns="Subgroup").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected)
    seen2 = table[(table.Subgroup == "combo_seen2")]
    if seed == 1:  # G1_4..19 without G1_5
        assert (seen2["Test Perturbations"] == 15).all()
    else:  # combo_seen1 is tested in seed 1 only: pooled over that seed
        assert (table.loc[table.Subgroup == "combo_seen1", "Seeds"] == 1).all()
        assert (seen2["Seeds"] == 2).all() and (seen2["Test Perturbations"] == 15 + 20).all()
    note = subgroup_note(df, seed)
    assert "`combo_seen2`: 15 (seed 1)" in note and "`unseen_single`: 4 (seed 1)" in note
    # the DE-metrics table likewise (its long format: one row per baseline, K and metric)
    df = df.assign(local_ds_l2=df["local_l2"], knn_ds_l2=df["knn_l2"], global_ds_l2=df["global_l2"])
    de = subgroup_de_metrics_table(df, seed=seed, stats=FAST)
    assert set(de["Metric"]) == {"Discrimination (L2)"} and len(de) == 5 * 3 * 2
    pd.testing.assert_frame_equal(de[de.Subgroup == "all"].drop(columns="Subgroup").reset_index(drop=True),
                                  de_metrics_table(df, seed=seed, stats=FAST))
    rows = df[(df.condition != "G1_5+ctrl") & (df.subgroup == "combo_seen0")]
    pd.testing.assert_frame_equal(de[de.Subgroup == "combo_seen0"].drop(columns="Subgroup").reset_index(drop=True),
                                  de_metrics_table(rows, seed=seed, stats=FAST))


def test_subgroup_table_needs_subgroups():
    with pytest.raises(ValueError, match="subgroup"):
        subgroup_performance_table(_synthetic(n=4), stats=FAST)


def test_top_gene_columns_omitted_when_no_more_genes_than_top_genes():
    small = performance_table(_synthetic(n=6, n_genes=800), seed=1, stats=FAST)
    assert not [c for c in small.columns if "top 1000" in c]
    assert "top-1000-gene columns are omitted" in performance_note(_synthetic(n=6, n_genes=800), "d", seed=1)
    large = performance_table(_synthetic(n=6, n_genes=1001), seed=1, stats=FAST)
    assert "Local Pearson r (top 1000)" in large.columns and "Improvement (L2, top 1000)" in large.columns
    assert "omitted" not in performance_note(_synthetic(n=6, n_genes=1001), "d", seed=1)


def test_per_perturbation_matches_on_seed_and_refuses_orphans():
    df = _synthetic(n=4, seeds=(1, 2))
    assert set(df["seed"]) == {1, 2} and df["global_pearson_r"].notna().any()
    lsft = df[[c for c in df.columns if not c.startswith(("global_", "improvement", "knn_improvement", "synthetic"))]]
    glob = df[df.top_pct == 1.0][["seed", "baseline", "condition", "global_pearson_r", "global_l2"]].rename(
        columns={"global_pearson_r": "pearson_r", "global_l2": "l2"})
    with pytest.raises(ValueError, match="no global-fit row"):
        per_perturbation(lsft, glob[glob.seed == 1])
    with pytest.raises(ValueError, match="seed column"):
        per_perturbation(lsft, glob.drop(columns="seed"))


def test_fraction_note_and_pooled_units():
    df = _synthetic(n=6, nan_rate=0.0, global_nan_every=0)
    frac = fraction_improved_table(df, stats=FAST)
    assert (frac["Perturbations Counted (r)"] == 2 * 6 + 4).all()  # S* perturbations are tested in both seeds
    assert "distinct perturbations" in fraction_note(df, "d") and "Wilson" in fraction_note(df, "d")


def test_summary_lists_test_sets_unpredictable_undefined_and_skipped():
    df = _synthetic(n=6)
    df = df[~((df.baseline == "b2") & (df.condition == "G2_1+ctrl"))]
    coverage = pd.DataFrame({"seed": [1, 1, 1, 2, 2, 2], "baseline": ["b1", "b2", "b3"] * 2, "n_test": [10, 10, 10, 10, 10, 10],
                             "n_test_predictable": [10, 10, 10, 10, 9, 10], "n_genes": 1500})
    unpredictable = pd.DataFrame({"seed": [2], "baseline": ["b2"], "condition": ["G2_1+ctrl"], "reason": ["gene has no embedding"]})
    summary = summary_table(df, coverage, {"lpm_k562PertEmb": "no K562 data"}, "seed_compat", unpredictable, stats=FAST).set_index("Statistic")["Value"]
    assert summary["Protocol"] == protocol_label("seed_compat") and "LEAKS TEST DATA" in summary["Protocol"]
    assert summary["Common test set (seed 1)"] == "10 of 10 test perturbations"
    assert summary["Common test set (seed 2)"] == "9 of 10 test perturbations"
    assert summary["Not predictable (seed 2): G2_1+ctrl"] == "b2: gene has no embedding"
    assert summary["Coverage of b2"].startswith("seed 1: 10 of 10") and "seed 2: 9 of 10" in summary["Coverage of b2"]
    n_bad = int(df[["local_pearson_r", "global_pearson_r", "knn_pearson_r"]].isna().any(axis=1).sum())
    assert summary["Undefined Pearson r"].startswith(f"{n_bad} of {len(df)} ")
    assert summary["Not run: lpm_k562PertEmb"] == "no K562 data"
    perf = performance_table(df, stats=FAST)
    assert summary["Overall mean improvement (Pearson r)"].startswith(f"{perf['Improvement (r)'].mean():.4f}")


def test_combined_table_keeps_each_datasets_own_table():
    a, b = _synthetic(n=6, rng_seed=1), _synthetic(n=6, rng_seed=2, n_genes=500)
    combined = combined_table({"a": performance_table(a, stats=FAST), "b": performance_table(b, stats=FAST)})
    assert list(combined.columns[:3]) == ["Dataset", "Baseline", "Top %"]
    own = performance_table(b, stats=FAST)
    got = combined[combined.Dataset == "b"].reset_index(drop=True)
    np.testing.assert_array_equal(got["q (LSFT vs global, r)"], own["q (LSFT vs global, r)"])
    assert got["Local Pearson r (top 1000)"].isna().all() and combined.loc[combined.Dataset == "a", "Local Pearson r (top 1000)"].notna().all()


def test_metrics_known_answers():
    obs = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 5.0]])
    pred = np.array([[2.0, 0.0], [4.0, 1.0], [6.0, 5.0]])
    np.testing.assert_allclose(pearson_columns(pred, obs), [1.0, 1.0])
    m = perturbation_metrics(pred, obs, np.array([0, 1]))
    np.testing.assert_allclose(m["l2"], [np.sqrt(1 + 4 + 9), 0.0])
    np.testing.assert_allclose(m["l2_top1000"], [np.sqrt(5), 0.0])
    assert list(top_expressed(np.array([0.1, 5.0, 3.0, 5.0]), 2)) == [1, 3]


def test_rank_metric_perfect_and_collapsed():
    obs = np.random.default_rng(0).normal(size=(20, 6))
    perfect = rank_metrics(obs.copy(), obs)
    assert (perfect["rank"] == 0).all()
    collapsed = rank_metrics(np.repeat(obs.mean(1, keepdims=True), 6, axis=1), obs)
    assert (collapsed["rank"] == 1).all()  # every prediction is equally close: ties count


def test_rank_metric_matches_definition():
    rng = np.random.default_rng(3)
    obs, pred = rng.normal(size=(15, 7)), rng.normal(size=(15, 7))
    got = rank_metrics(pred, obs)
    p = obs.shape[1]
    d = lambda a, b: np.linalg.norm(a - b)  # noqa: E731
    for i in range(p):
        own = d(pred[:, i], obs[:, i])
        rank = sum(d(pred[:, j], obs[:, i]) <= own for j in range(p) if j != i) / (p - 1)
        rank_t = sum(d(pred[:, i], obs[:, j]) <= own for j in range(p) if j != i) / (p - 1)
        assert got["rank"][i] == pytest.approx(rank) and got["rank_transposed"][i] == pytest.approx(rank_t)
