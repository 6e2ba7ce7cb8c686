"""Rerun only what a change invalidates, checked on the real Snakemake DAG (dry runs after the shared run)."""

from __future__ import annotations

import copy

import pytest
from workflow_utils import SHARED_RUN_DATASETS, planned_jobs, snakemake, write_config

from lsftbench.pipeline.config import baselines_for

pytestmark = pytest.mark.workflow

#: The shared run's datasets (tests/conftest.py): the per-dataset jobs below are counted per dataset.
D = len(SHARED_RUN_DATASETS)
#: The jobs after the per-(dataset, seed) work: tables, figures, combined table, run index, target.
AGGREGATION = {"dataset_tables": D, "figures": D, "forest_figure": 1, "combined_table": 1, "leaderboard": 1,
               "run_index": 1, "all": 1}


def plan_with(run, change, *targets):
    new = copy.deepcopy(run.config)
    change(new)
    write_config(run.root, new)
    try:
        return planned_jobs(run.root, *targets, root=run.root)
    finally:
        write_config(run.root, run.config)


def pairs(config):
    """(dataset, baseline) pairs of one split seed."""
    return sum(len(baselines_for(config, d)) for d in config["datasets"])


def n_seeds(config):
    return len(config["split"]["seeds"])


def test_ridge_penalty_reruns_fits_and_lsft_only(shared_run):
    """λ reruns the ridge baselines' fits and shards, not mean_response's, which do not depend on it (issue 23)."""
    config = shared_run.config
    jobs = plan_with(shared_run, lambda c: c.update(ridge_penalty=0.5))
    ridge = sum(config["baselines"][b].get("model", "ridge") == "ridge" for d in config["datasets"]
                for b in baselines_for(config, d))
    assert ridge < pairs(config)  # mean_response is among the baselines
    n = ridge * n_seeds(config)
    # the null and idealized ridge models of the progress bar use the same penalty
    assert jobs == {"global_fit": n, "lsft": n * len(config["top_pcts"]), "progress_methods": D * n_seeds(config),
                    **AGGREGATION}


def test_one_baseline_setting_reruns_only_that_baseline(shared_run):
    config = shared_run.config
    jobs = plan_with(shared_run, lambda c: c["baselines"]["lpm_randomGeneEmb"]["gene"].update(seed=7))
    n = D * n_seeds(config)
    assert jobs == {"embedding": n, "global_fit": n, "lsft": n * len(config["top_pcts"]), **AGGREGATION}


def test_new_k_adds_only_new_shards(shared_run):
    config = shared_run.config
    jobs = plan_with(shared_run, lambda c: c.update(top_pcts=[*c["top_pcts"], 20]))
    assert jobs == {"lsft": pairs(config) * n_seeds(config), **AGGREGATION}


def test_adding_a_seed_runs_only_its_jobs(shared_run):
    """Issue 9: a new split seed adds its split, embeddings, fits, shards and progress methods; the
    existing seeds' jobs stay; the noise ceiling (over every seed's test perturbations) and the
    aggregation rerun."""
    config = shared_run.config
    jobs = plan_with(shared_run, lambda c: c["split"].update(seeds=[*c["split"]["seeds"], 3]))
    n = pairs(config)
    assert jobs == {"split": D, "training_pca": D, "embedding": n, "global_fit": n, "lsft": n * len(config["top_pcts"]),
                    "progress_methods": D, "noise_ceiling": D, **AGGREGATION}


def test_removing_a_seed_reruns_only_aggregation(shared_run):
    jobs = plan_with(shared_run, lambda c: c["split"].update(seeds=c["split"]["seeds"][:1]))
    assert jobs == {"noise_ceiling": D, **AGGREGATION}


def test_exclude_target_gene_rescores_every_method_and_the_ceiling(shared_run):
    """Issue 26: every metric and the noise ceiling follow metrics.exclude_target_gene; no embedding, split or
    progress-method prediction depends on it."""
    config = shared_run.config
    jobs = plan_with(shared_run, lambda c: c["metrics"].update(exclude_target_gene=True))
    n = pairs(config) * n_seeds(config)
    assert jobs == {"global_fit": n, "lsft": n * len(config["top_pcts"]), "noise_ceiling": D, **AGGREGATION}


def test_a_new_gene_table_baseline_reruns_the_bounds_and_an_all_gene_one_does_not(shared_run):
    """Issue 26: the genes every compared method predicts follow the gene-table baselines (SPEC 7); a baseline on all
    measured genes changes no bound."""
    config = shared_run.config
    datasets = len(config["datasets"])
    per_baseline = {"embedding": datasets * n_seeds(config), "global_fit": datasets * n_seeds(config),
                    "lsft": datasets * n_seeds(config) * len(config["top_pcts"])}
    table = plan_with(shared_run, lambda c: c["baselines"].update(
        copy_of_scgpt=copy.deepcopy(c["baselines"]["lpm_scgptGeneEmb"])))
    # its own copy of the scGPT gene table (one per baseline), and the bounds on the genes every method predicts
    assert table == {**per_baseline, "pretrained_gene_table": 1, "noise_ceiling": D, **AGGREGATION}
    all_genes = plan_with(shared_run, lambda c: c["baselines"].update(
        copy_of_selftrained=copy.deepcopy(c["baselines"]["lpm_selftrained"])))
    assert all_genes == {**per_baseline, **AGGREGATION}


def test_de_test_reruns_the_de_step_and_the_tables_only(shared_run):
    """Issue 29: metrics.de_test changes the DE results and what reads them."""
    other = "welch" if shared_run.config["metrics"].get("de_test", "wilcoxon") == "wilcoxon" else "wilcoxon"
    jobs = plan_with(shared_run, lambda c: c["metrics"].update(de_test=other))
    assert jobs == {"differential_expression": D, **AGGREGATION}


def test_n_resamples_reruns_only_aggregation(shared_run):
    jobs = plan_with(shared_run, lambda c: c["statistics"].update(n_resamples=999))
    assert jobs == AGGREGATION


def test_memory_knobs_rerun_nothing(shared_run):
    assert plan_with(shared_run, lambda c: c["pseudobulk"].update(chunk_size=7)) == {}
    assert plan_with(shared_run, lambda c: c["progress_bar"].update(max_mb=64)) == {}


def test_switching_protocol_reruns_nothing(shared_run):
    """Issue 13: both protocols' outputs live side by side, so switching back and forth is free."""
    assert plan_with(shared_run, lambda c: c.update(protocol="seed_compat")) == {}


def test_editing_a_script_reruns_only_its_rule(shared_run):
    root = shared_run.root
    script = root / "workflow" / "scripts" / "figures.py"
    original = script.read_text()
    script.write_text(original + "\n# edited\n")
    try:
        # the run index lists the figures, so it is refreshed too
        assert planned_jobs(root, root=root) == {"figures": D, "run_index": 1, "all": 1}
    finally:
        script.write_text(original)
        snakemake(root, "audit", "--cores", "2", root=root)  # bring the results up to date for the next test


def test_deleted_shard_reruns_that_shard_and_aggregation(shared_run):
    root = shared_run.root
    lsft_dir = shared_run.results / SHARED_RUN_DATASETS[0] / "default" / "seed1" / "lsft" / "lpm_selftrained" / "top5"
    shard = next(lsft_dir.glob("chunk*.parquet"))
    saved = shard.read_bytes()
    shard.unlink()
    try:
        assert planned_jobs(root, root=root) == {"lsft": 1, "dataset_tables": 1, "figures": 1, "forest_figure": 1,
                                                 "combined_table": 1, "leaderboard": 1, "run_index": 1, "all": 1}
    finally:
        if not shard.exists():
            shard.write_bytes(saved)
        snakemake(root, "audit", "--cores", "2", root=root)
