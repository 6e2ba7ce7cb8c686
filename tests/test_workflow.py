"""The full Snakemake DAG on a tiny config (the session's shared ``snakemake audit`` run): tables, figures,
report, lint and the dry-run job counts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from workflow_utils import REPO, SHARED_RUN_DATASETS, planned_jobs, snakemake, tiny_config, write_config

from lsftbench.model.lsft import n_neighbours
from lsftbench.pipeline.config import baselines_for

pytestmark = pytest.mark.workflow

PROTOCOLS = ("default", "seed_compat")
SEEDS = (1, 2)
#: 3 datasets x 9 baselines, minus the two dataset_pca baselines on their own source dataset.
PAIRS = 25
EXPECTED_DEFAULT_JOBS = {
    "synthetic_data": 3,
    "synthetic_go_graph": 1,
    "synthetic_scfoundation_checkpoint": 1,
    "synthetic_scgpt_checkpoint": 1,
    "go_graph_table": 1,
    "pretrained_gene_table": 2,
    "pseudobulk": 3,
    "split": 3 * len(SEEDS),
    "training_pca": 3 * len(SEEDS),  # once per (dataset, seed), read by every baseline with a training_pca side
    "embedding": PAIRS * len(SEEDS),
    "global_fit": PAIRS * len(SEEDS),
    "lsft": PAIRS * len(SEEDS) * 3,  # x 3 K values
    "progress_methods": 3 * len(SEEDS),
    "noise_ceiling": 3,
    "differential_expression": 3,
    "dataset_tables": 3,
    "figures": 3,
    "forest_figure": 1,
    "combined_table": 1,
    "leaderboard": 1,
    "run_index": 1,
    "all": 1,
}
#: (table column, the two columns it is the difference of, sign): Improvement = Local − Baseline etc.
DIFFERENCES = [
    ("Improvement (r)", "Local Pearson r", "Baseline Pearson r", 1),
    ("Improvement (L2)", "Local L2", "Baseline L2", -1),
    ("kNN Improvement (r)", "kNN Pearson r", "Baseline Pearson r", 1),
    ("kNN Improvement (L2)", "kNN L2", "Baseline L2", -1),
    ("Improvement (centred r)", "Local Centred Pearson r", "Baseline Centred Pearson r", 1),
    ("Improvement (rank)", "Local Rank", "Baseline Rank", -1),
    ("Improvement (transposed rank)", "Local Transposed Rank", "Baseline Transposed Rank", -1),
]


def _tables(results, protocol, dataset, seed=None):
    root = results / "tables" / protocol / dataset
    return root if seed is None else root / f"seed{seed}"


def test_default_dry_run_job_counts(tmp_path):
    write_config(tmp_path, tiny_config())
    assert planned_jobs(tmp_path) == EXPECTED_DEFAULT_JOBS


def test_lint_is_clean():
    proc = snakemake(REPO, "--lint", "--cores", "1")
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_second_run_has_nothing_to_do(shared_run):
    assert planned_jobs(shared_run.root, root=shared_run.root) == {}
    assert planned_jobs(shared_run.root, "audit", root=shared_run.root) == {}


def test_tables_list_every_baseline_and_k_with_sane_values(shared_run):
    results, config = shared_run.results, shared_run.config
    pcts = [f"{p:g}%" for p in config["top_pcts"]]
    for dataset in config["datasets"]:
        perf = pd.read_csv(_tables(results, "default", dataset) / "lsft_performance.csv")
        expected = {(b, p) for b in baselines_for(config, dataset) for p in pcts}
        assert set(zip(perf["Baseline"], perf["Top %"])) == expected and len(perf) == len(expected)
        for col in ("Local Pearson r", "Baseline Pearson r", "kNN Pearson r"):
            assert perf[col].between(-1, 1).all(), col
        # mean_response's global prediction is the training mean m itself: its centred r is undefined
        # (Δ̂ − m = 0) for every perturbation, so the row's centred-r means are all left out (SPEC 7.1).
        undefined = perf["Local Centred Pearson r"].isna()
        assert set(perf.loc[undefined, "Baseline"]) == {"mean_response"}
        assert (perf.loc[undefined, "Undefined (centred r)"] == perf.loc[undefined, "Test Perturbations"]).all()
        assert perf.loc[~undefined, "Local Centred Pearson r"].between(-1, 1).all()
        for col in ("Local L2", "Baseline L2", "kNN L2"):
            assert (perf[col] >= 0).all(), col
        for col in ("Local Rank", "Baseline Rank", "Local Transposed Rank"):
            assert perf[col].between(0, 1).all(), col
        for col in ("Local Pearson r", "Improvement (r)"):
            assert (perf[f"{col} CI low"] <= perf[col]).all() and (perf[col] <= perf[f"{col} CI high"]).all()
        assert perf["q (LSFT vs global, r)"].between(0, 1).all() and "Mode Collapse" in perf.columns
        assert perf["Mean Similarity"].between(-1, 1).all()
        frac = pd.read_csv(_tables(results, "default", dataset) / "fraction_improved.csv")
        assert len(frac) == len(expected)
        assert frac.filter(like="Fraction").stack().between(0, 1).all()
        rows = pd.read_parquet(_tables(results, "default", dataset) / "per_perturbation.parquet")
        assert set(rows["seed"]) == set(SEEDS)
        for (_, _, pct), grp in rows.groupby(["seed", "baseline", "top_pct"]):
            assert (grp["train_size"] == n_neighbours(grp["n_train_candidates"].iloc[0], pct)).all()
        md = (_tables(results, "default", dataset) / "lsft_performance.md").read_text()
        main, more = md.split("## More metrics")
        assert main.count("\n| ") == len(expected) + 1  # header + one row per baseline x K
        assert more.count("\n| ") == 1 + len(expected) * len(md_more_metrics(perf))  # the rest, one row per metric
        assert "common test set, perturbations every baseline can predict" in md and " [" in md
        synthetic = perf.set_index("Baseline")["Synthetic Stand-in"].fillna("").groupby(level=0).first()
        assert synthetic.get("lpm_scgptGeneEmb") == "gene" and synthetic.get("lpm_gearsPertEmb") == "pert"
        assert synthetic.get("lpm_selftrained") == "" and synthetic.get("lpm_textGeneEmb") == ""
        summary = pd.read_csv(_tables(results, "default", dataset) / "summary.csv")
        assert summary["Statistic"].str.startswith("Coverage of").sum() == len(baselines_for(config, dataset))
    combined = pd.read_csv(results / "tables" / "default" / "combined.csv")
    assert set(combined["Dataset"]) == set(config["datasets"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_improvement_is_the_difference_of_its_columns(shared_run, protocol):
    """Issue 11: every mean in a row is over the same perturbations, in every table of every protocol."""
    tables = sorted((shared_run.results / "tables" / protocol).rglob("lsft_performance*.csv"))
    tables.append(shared_run.results / "tables" / protocol / "combined.csv")
    assert len(tables) == len(shared_run.config["datasets"]) * 2 * (1 + len(SEEDS)) + 1
    for path in tables:
        table = pd.read_csv(path)
        for diff, a, b, sign in DIFFERENCES:
            if diff not in table.columns:
                assert diff not in ("Improvement (r)", "Improvement (L2)"), path
                continue
            np.testing.assert_allclose(table[diff], sign * (table[a] - table[b]), atol=1e-9, err_msg=f"{path}: {diff}")


def test_pooled_means_are_the_means_of_the_per_seed_means(shared_run):
    for dataset in shared_run.config["datasets"]:
        pooled = pd.read_csv(_tables(shared_run.results, "default", dataset) / "lsft_performance.csv")
        per_seed = [pd.read_csv(_tables(shared_run.results, "default", dataset, s) / "lsft_performance.csv") for s in SEEDS]
        keys = ["Baseline", "Top %"]
        merged = pooled.set_index(keys)
        for col in ("Local Pearson r", "Baseline L2", "Improvement (r)", "Local Rank"):
            mean = pd.concat([t.set_index(keys)[col] for t in per_seed], axis=1).mean(axis=1)
            np.testing.assert_allclose(merged[col], mean.loc[merged.index], atol=1e-12, err_msg=col)
            sd = pd.concat([t.set_index(keys)[col] for t in per_seed], axis=1).std(axis=1, ddof=1)
            np.testing.assert_allclose(merged[f"{col} SD (seeds)"], sd.loc[merged.index], atol=1e-12, err_msg=col)


def test_common_test_set_is_the_intersection(shared_run):
    for dataset in shared_run.config["datasets"]:
        rows = pd.read_parquet(_tables(shared_run.results, "default", dataset) / "per_perturbation.parquet")
        for seed in SEEDS:
            seed_rows = rows[rows.seed == seed]
            common = set.intersection(*(set(g.condition) for _, g in seed_rows.groupby("baseline")))
            md = (_tables(shared_run.results, "default", dataset, seed) / "lsft_performance.md").read_text()
            assert f"{len(common)} of" in md
            perf = pd.read_csv(_tables(shared_run.results, "default", dataset, seed) / "lsft_performance.csv")
            assert set(perf["Test Perturbations"]) == {len(common)}


def test_progress_bar_tables(shared_run):
    for dataset in shared_run.config["datasets"]:
        table = pd.read_csv(_tables(shared_run.results, "default", dataset) / "progress_bar.csv")
        assert {"WAP", "BAP", "% of gap closed", "Method", "Metric"} <= set(table.columns)
        assert set(table["Method"]) >= {"LSFT", "kNN", "global"}
        pearson = table[table.Metric == "Pearson r"]
        assert (pearson["BAP"] > pearson["WAP"]).all()
        expected = 100 * (pearson["Score"] - pearson["WAP"]) / (pearson["BAP"] - pearson["WAP"])
        per_seed = [pd.read_csv(_tables(shared_run.results, "default", dataset, s) / "progress_bar.csv") for s in SEEDS]
        assert all(len(t) == len(table) for t in per_seed)
        one = per_seed[0][per_seed[0].Metric == "Pearson r"]
        np.testing.assert_allclose(
            one["% of gap closed"], 100 * (one["Score"] - one["WAP"]) / (one["BAP"] - one["WAP"]), rtol=1e-9, atol=1e-9
        )
        assert len(expected) == len(pearson)


def test_figures_written_and_deterministic(shared_run):
    root, results = shared_run.root, shared_run.results
    figures = sorted((results / "figures" / "default").rglob("*.*"))
    names = {p.relative_to(results / "figures" / "default").as_posix() for p in figures}
    for dataset in shared_run.config["datasets"]:
        for name in ("local_vs_global", "improvement_distribution", "progress_bar"):
            assert {f"{dataset}/{name}.png", f"{dataset}/{name}.svg"} <= names
    assert {"forest.png", "forest.svg"} <= names
    for png in (p for p in figures if p.suffix == ".png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in figures}
    snakemake(root, "--cores", "1", "--forcerun", "figures", "forest_figure", root=root)
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in figures} == before


def test_html_report(shared_run):
    root = shared_run.root
    snakemake(root, "--report", "report.html", "--cores", "1", root=root)
    html = (root / "report.html").read_text(errors="replace")
    for name in ("lsft_performance", "local_vs_global", "forest", "progress_bar"):
        assert name in html, name


def test_run_index_lists_the_tables(shared_run):
    index = (shared_run.results / "tables" / "default" / "README.md").read_text()
    for dataset in shared_run.config["datasets"]:
        assert f"{dataset}/lsft_performance.md" in index


def test_audit_tables(shared_run):
    for dataset in shared_run.config["datasets"]:
        audit = pd.read_csv(shared_run.results / "tables" / "audit" / f"{dataset}.csv")
        assert len(audit) > 0
        md = (shared_run.results / "tables" / "audit" / f"{dataset}.md").read_text()
        assert "seed_compat" in md


def test_no_partial_outputs_left(shared_run):
    assert not list(shared_run.results.rglob(".*.tmp*"))


def test_lsft_shards_memory_map_the_products_of_the_global_fit(shared_run):
    """Issue 12: the Gram products are computed once per (dataset, seed, baseline) by the global fit;
    a baseline that refits both sides stores G with the target rows, one with fixed embeddings none,
    and seed_compat (whose LSFT refits in each shard, as the published code) shares nothing."""
    import json

    seed_dir = shared_run.results / SHARED_RUN_DATASETS[0] / "{}" / "seed1" / "lsft"
    pairs = [("default", "lpm_selftrained"), ("default", "lpm_randomPertEmb"), ("seed_compat", "lpm_selftrained")]
    meta = {(protocol, b): json.loads((Path(str(seed_dir).format(protocol)) / b / "shared" / "meta.json").read_text())
            for protocol, b in pairs}
    assert "gram_targets" in meta["default", "lpm_selftrained"]["arrays"]
    assert meta["default", "lpm_randomPertEmb"]["arrays"] == ["gram", "xt_ctrl"]  # gene side refit only
    assert meta["seed_compat", "lpm_selftrained"]["arrays"] == []
    shard = np.load(Path(str(seed_dir).format("default")) / "lpm_selftrained" / "shared" / "gram_targets.npy", mmap_mode="r")
    n_train = pd.read_parquet(Path(str(seed_dir).format("default")) / "lpm_selftrained" / "top5" / "chunk0-of-1.parquet")[
        "n_train_candidates"].iloc[0]
    assert shard.shape == (n_train, n_train, 2)


def md_more_metrics(perf: pd.DataFrame) -> list[str]:
    """The metrics of a performance table's "More metrics" Markdown section: its families other than r and L2."""
    return [c.removeprefix("Local ") for c in perf.columns
            if c.startswith("Local ") and not c.endswith((" CI low", " CI high", " SD (seeds)"))
            and c not in ("Local Pearson r", "Local L2", "Local Spread")]  # the spread is in the Mode Collapse column
