"""Rerun only what a change invalidates, checked on the real Snakemake DAG (dry runs after one real run)."""

from __future__ import annotations

import copy

import pytest

from workflow_utils import copy_workflow, planned_jobs, snakemake, tiny_config, write_config

pytestmark = pytest.mark.workflow

AGGREGATION = {"dataset_tables": 3, "figures": 3, "combined_table": 1, "all": 1}


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """A completed tiny run of a private copy of the workflow (so the test may edit its scripts)."""
    root = copy_workflow(tmp_path_factory.mktemp("workflow"))
    config = tiny_config()
    write_config(root, config)
    snakemake(root, "--cores", "2", root=root)
    return root, config


def plan_with(root, config, change):
    new = copy.deepcopy(config)
    change(new)
    write_config(root, new)
    try:
        return planned_jobs(root, root=root)
    finally:
        write_config(root, config)


def pairs(config):
    from lsftbench.workflow_config import baselines_for

    return sum(len(baselines_for(config, d)) for d in config["datasets"])


def test_second_run_does_nothing(done):
    root, _ = done
    assert planned_jobs(root, root=root) == {}


def test_ridge_penalty_reruns_fits_and_lsft_only(done):
    root, config = done
    jobs = plan_with(root, config, lambda c: c.update(ridge_penalty=0.5))
    n = pairs(config)
    assert jobs == {"global_fit": n, "lsft": n * len(config["top_pcts"]), **AGGREGATION}


def test_one_baseline_setting_reruns_only_that_baseline(done):
    root, config = done
    jobs = plan_with(root, config, lambda c: c["baselines"]["lpm_randomGeneEmb"]["gene"].update(seed=7))
    assert jobs == {"embedding": 3, "global_fit": 3, "lsft": 3 * len(config["top_pcts"]), **AGGREGATION}


def test_new_k_adds_only_new_shards(done):
    root, config = done
    jobs = plan_with(root, config, lambda c: c.update(top_pcts=[*c["top_pcts"], 20]))
    assert jobs == {"lsft": pairs(config), **AGGREGATION}


def test_memory_knob_reruns_nothing(done):
    root, config = done
    assert plan_with(root, config, lambda c: c["pseudobulk"].update(chunk_size=7)) == {}


def test_editing_a_script_reruns_only_its_rule(done):
    root, _ = done
    script = root / "workflow" / "scripts" / "figures.py"
    original = script.read_text()
    script.write_text(original + "\n# edited\n")
    try:
        assert planned_jobs(root, root=root) == {"figures": 3, "all": 1}
    finally:
        script.write_text(original)
        snakemake(root, "--cores", "2", root=root)  # bring the results up to date for the next test


def test_deleted_shard_reruns_that_shard_and_aggregation(done):
    root, config = done
    shard = next((root / "results" / "adamson" / "lsft" / "lpm_selftrained" / "top5").glob("chunk*.parquet"))
    saved = shard.read_bytes()
    shard.unlink()
    try:
        assert planned_jobs(root, root=root) == {"lsft": 1, "dataset_tables": 1, "figures": 1, "combined_table": 1, "all": 1}
    finally:
        if not shard.exists():
            shard.write_bytes(saved)
        snakemake(root, "--cores", "2", root=root)
