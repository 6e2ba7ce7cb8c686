"""Issue 11: `snakemake --configfile my.yaml` runs only what my.yaml declares, into its own output root."""

from __future__ import annotations

import hashlib

import pytest
import yaml
from workflow_utils import job_counts, snakemake, write_toy_data

pytestmark = pytest.mark.workflow

MY_CONFIG = """\
# A config of one's own: one local dataset, two baselines, one split seed.
datasets:
  toy:
    source: local
    path: inputs/toy.h5ad
split:
  seeds: [1]
top_pcts: [10]
baselines:
  lpm_selftrained:
    gene: {type: training_pca}
    pert: {type: training_pca}
  mean_response:
    model: mean
    pert: {type: training_pca}
"""


def _hashes(root):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_config_of_ones_own_runs_only_its_dataset_into_its_own_results(shared_run):
    root = shared_run.root
    write_toy_data(root / "inputs" / "toy.h5ad")
    (root / "my.yaml").write_text(MY_CONFIG)
    default_tables = _hashes(shared_run.results / "tables")

    dry = snakemake(root, "-n", "--cores", "1", "--configfile", "my.yaml", root=root)
    jobs = job_counts(dry.stdout + dry.stderr)
    assert jobs["split"] == 1 and jobs["pseudobulk"] == 1 and jobs["embedding"] == 2 and jobs["lsft"] == 2
    assert "synthetic_data" not in jobs and "pretrained_gene_table" not in jobs
    assert "adamson" not in dry.stdout and "replogle" not in dry.stdout

    snakemake(root, "--cores", "2", "--configfile", "my.yaml", root=root)
    mine = root / "results-my" / "tables" / "default"
    assert sorted(p.name for p in mine.iterdir() if p.is_dir()) == ["toy"]
    assert (mine / "toy" / "lsft_performance.csv").is_file() and (mine / "combined.md").is_file()
    assert _hashes(shared_run.results / "tables") == default_tables
    config = yaml.safe_load((root / "config" / "config.yaml").read_text())
    assert config == shared_run.config  # the default config is not touched either
