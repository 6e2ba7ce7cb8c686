"""The full Snakemake DAG on a tiny config: tables, figures, report, lint and the dry-run job counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lsftbench.lsft import n_neighbours
from lsftbench.workflow_config import baselines_for
from workflow_utils import REPO, planned_jobs, snakemake, tiny_config, write_config

pytestmark = pytest.mark.workflow

EXPECTED_DEFAULT_JOBS = {
    "synthetic_data": 3,
    "synthetic_go_graph": 1,
    "synthetic_scfoundation_checkpoint": 1,
    "synthetic_scgpt_checkpoint": 1,
    "go_graph_table": 1,
    "pretrained_gene_table": 2,
    "split": 3,
    "pseudobulk": 3,
    "embedding": 25,  # 3 datasets x 9 baselines, minus the two dataset_pca baselines on their own source
    "global_fit": 25,
    "lsft": 75,  # x 3 K values
    "dataset_tables": 3,
    "figures": 3,
    "combined_table": 1,
    "all": 1,
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The default DAG on tiny data, plus a user-declared baseline from a gene table (paper TSV layout)."""
    workdir = tmp_path_factory.mktemp("tiny")
    config = tiny_config()
    genes = [f"SYN{i:04d}" for i in range(1, 61)]
    values = np.random.default_rng(0).normal(size=(5, len(genes)))
    table = pd.DataFrame(values, columns=genes)  # one column per gene, one row per dimension
    table.to_csv(workdir / "text_gene_emb.tsv", sep="\t", index=False)
    config["baselines"]["lpm_textGeneEmb"] = {
        "gene": {"type": "table", "path": str(workdir / "text_gene_emb.tsv")},
        "pert": {"type": "training_pca"},
    }
    write_config(workdir, config)
    snakemake(workdir, "--cores", "2")
    return workdir, config


def test_default_dry_run_job_counts(tmp_path):
    write_config(tmp_path, tiny_config())
    assert planned_jobs(tmp_path) == EXPECTED_DEFAULT_JOBS


def test_lint_is_clean():
    proc = snakemake(REPO, "--lint", "--cores", "1")
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_tables_list_every_baseline_and_k_with_sane_values(tiny_run):
    workdir, config = tiny_run
    pcts = [f"{p:g}%" for p in config["top_pcts"]]
    for dataset in config["datasets"]:
        perf = pd.read_csv(workdir / f"results/tables/{dataset}/lsft_performance.csv")
        expected = {(b, p) for b in baselines_for(config, dataset) for p in pcts}
        assert set(zip(perf["Baseline"], perf["Top %"])) == expected and len(perf) == len(expected)
        for col in ("Local Pearson r", "Baseline Pearson r", "kNN Pearson r"):
            assert perf[col].between(-1, 1).all(), col
        for col in ("Local L2", "Baseline L2", "kNN L2"):
            assert (perf[col] >= 0).all(), col
        np.testing.assert_allclose(perf["Improvement (r)"], perf["Local Pearson r"] - perf["Baseline Pearson r"], atol=1e-12)
        np.testing.assert_allclose(perf["Improvement (L2)"], perf["Baseline L2"] - perf["Local L2"], atol=1e-12)
        assert perf["Mean Similarity"].between(-1, 1).all()
        frac = pd.read_csv(workdir / f"results/tables/{dataset}/fraction_improved.csv")
        assert len(frac) == len(expected)
        assert frac.filter(like="Fraction").stack().between(0, 1).all()
        rows = pd.read_parquet(workdir / f"results/tables/{dataset}/per_perturbation.parquet")
        for (baseline, pct), grp in rows.groupby(["baseline", "top_pct"]):
            n_train = grp["n_train_candidates"].iloc[0]
            assert (grp["train_size"] == n_neighbours(n_train, pct)).all()
        md = (workdir / f"results/tables/{dataset}/lsft_performance.md").read_text()
        assert md.count("\n| ") == len(expected) + 1  # header + one row per baseline x K
        synthetic = perf.set_index("Baseline")["Synthetic Stand-in"].fillna("").groupby(level=0).first()
        assert synthetic.get("lpm_scgptGeneEmb") == "gene" and synthetic.get("lpm_gearsPertEmb") == "pert"
        assert synthetic.get("lpm_selftrained") == "" and synthetic.get("lpm_textGeneEmb") == ""
        summary = pd.read_csv(workdir / f"results/tables/{dataset}/summary.csv")
        assert summary["Statistic"].str.startswith("Coverage of").sum() == len(baselines_for(config, dataset))
    combined = pd.read_csv(workdir / "results/tables/combined.csv")
    assert set(combined["Dataset"]) == set(config["datasets"])


def test_figures_written(tiny_run):
    workdir, config = tiny_run
    for dataset in config["datasets"]:
        for name in ("local_vs_global", "improvement_distribution"):
            png = workdir / f"results/figures/{dataset}/{name}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert (workdir / f"results/figures/{dataset}/{name}.svg").read_text().lstrip().startswith("<?xml")


def test_second_run_has_nothing_to_do(tiny_run):
    workdir, _ = tiny_run
    assert planned_jobs(workdir) == {}


def test_html_report(tiny_run):
    workdir, _ = tiny_run
    snakemake(workdir, "--report", "report.html", "--cores", "1")
    html = (workdir / "report.html").read_text(errors="replace")
    assert "lsft_performance" in html and "local_vs_global" in html


def test_no_partial_outputs_left(tiny_run):
    workdir, _ = tiny_run
    assert not list((workdir / "results").rglob(".*.tmp*"))
