"""Models of one's own in the workflow (SPEC 7.3): the README's worked example end to end, a model that misses
three test perturbations, a collapsed one; what reruns when a model changes; a bad file stops the run.

One small run shared by the module: ``snakemake splits``, ``examples/knn_model.py`` on the exported splits
(exactly as the README says), two more models derived from it, then the run with the three models.
"""

from __future__ import annotations

import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_utils import REPO, TINY, copy_workflow, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow

SEEDS = (1, 2)
MODELS = {
    "knn_example": {"path": "predictions/{dataset}_seed{seed}.h5ad", "quantity": "expression"},
    "partial": {"path": "partial/{dataset}_seed{seed}.csv", "quantity": "expression"},
    "constant": {"path": "constant/{dataset}_seed{seed}.parquet", "quantity": "delta"},
}
#: Test perturbations the partial model leaves out, per seed.
MISSING = 3


def _config(models: dict) -> dict:
    return {
        "datasets": {"adamson": {"source": "synthetic", "overrides": dict(TINY)}},
        "split": {"seeds": list(SEEDS)},
        "top_pcts": [5, 10],
        "statistics": {"n_resamples": 200},
        "progress_bar": {"replicates": 4},
        "baselines": {
            "lpm_selftrained": {"gene": {"type": "training_pca"}, "pert": {"type": "training_pca"}},
            "lpm_randomPertEmb": {"gene": {"type": "training_pca"}, "pert": {"type": "random", "seed": 1}},
            "mean_response": {"model": "mean", "pert": {"type": "training_pca"}},
        },
        "models": models,
    }


@pytest.fixture(scope="module")
def models_run(tmp_path_factory):
    root = copy_workflow(tmp_path_factory.mktemp("models_run"))
    write_config(root, _config({}))
    snakemake(root, "splits", "--cores", "2", root=root)
    example = subprocess.run(  # the README's command, verbatim but for the interpreter
        [sys.executable, str(REPO / "examples" / "knn_model.py"), "--splits", "results/splits", "--data",
         "results/data/{dataset}/perturb_processed.h5ad", "--out", "predictions"],
        cwd=root, capture_output=True, text=True, check=True,
    )
    assert "predictions/adamson_seed1.h5ad" in example.stdout
    dropped = {}
    for seed in SEEDS:
        pred = ad.read_h5ad(root / "predictions" / f"adamson_seed{seed}.h5ad")
        frame = pd.DataFrame(pred.X, index=pred.obs_names, columns=pred.var_names)
        dropped[seed] = list(frame.index[:MISSING])
        (root / "partial").mkdir(exist_ok=True)
        frame.iloc[MISSING:].rename_axis("condition").reset_index().to_csv(root / "partial" / f"adamson_seed{seed}.csv",
                                                                           index=False)
        ctrl = pd.read_csv(root / "results" / "splits" / "adamson" / f"seed{seed}" / "control_mean.csv")["control_mean"]
        same = (frame.to_numpy() - ctrl.to_numpy()).mean(axis=0)  # one vector for every perturbation
        constant = pd.DataFrame(np.repeat(same[None], len(frame), axis=0), index=frame.index, columns=frame.columns)
        (root / "constant").mkdir(exist_ok=True)
        constant.rename_axis("condition").reset_index().to_parquet(root / "constant" / f"adamson_seed{seed}.parquet")
    write_config(root, _config(MODELS))
    snakemake(root, "--cores", "2", root=root)
    tables = root / "results" / "tables" / "default" / "adamson"
    return {"root": root, "tables": tables, "dropped": dropped}


def test_leaderboard_ranks_every_method_and_marks_the_external_ones(models_run):
    board = pd.read_csv(models_run["tables"] / "leaderboard.csv")
    kinds = board.groupby("Kind")["Method"].apply(set)
    assert kinds["external model"] == set(MODELS)
    assert {"lpm_selftrained · global fit", "mean_response · global fit"} <= kinds["global fit"]
    assert {f"{b} · {m} top {k}%" for b in ("lpm_selftrained", "lpm_randomPertEmb") for m in ("LSFT", "kNN")
            for k in (5, 10)} <= kinds["LSFT"] | kinds["kNN"]
    assert {"train mean", "no change", "random perturbation embedding"} == kinds["null method"]
    assert kinds["uses test data"] == {"idealized baseline (uses test data)"}
    r = board["Pearson r"].to_numpy()
    assert (np.diff(r[np.isfinite(r)]) <= 0).all() and list(board["Position"]) == list(range(1, len(board) + 1))
    external = board[board["Kind"] == "external model"]
    assert (external["Note"] == "external predictions: not audited for leakage").all()
    assert board.loc[board["Kind"] == "uses test data", "Note"].str.contains("uses test data").all()
    assert board.loc[board["Method"] == "constant", "Mode Collapse"].iloc[0].startswith("yes (spread 0.00")
    assert board.loc[board["Method"] == "knn_example", "Mode Collapse"].fillna("").iloc[0] == ""
    md = (models_run["tables"] / "leaderboard.md").read_text()
    assert "external predictions: not audited for leakage" in md and "Best linear method" in md
    across = pd.read_csv(models_run["root"] / "results" / "tables" / "default" / "leaderboard.csv")
    assert set(MODELS) <= set(across["Method"])


def test_the_example_model_is_scored_like_a_baseline(models_run):
    """The leaderboard's mean is that of the model's per-perturbation rows over the common test set, pooled."""
    board = pd.read_csv(models_run["tables"] / "leaderboard.csv").set_index("Method")
    per_method = pd.read_parquet(models_run["tables"] / "per_method.parquet")
    rows = per_method[per_method["method"] == "knn_example"]
    assert board.loc["knn_example", "Pearson r"] == pytest.approx(rows.groupby("seed")["pearson_r"].mean().mean())
    evaluated = pd.read_parquet(models_run["root"] / "results" / "adamson" / "default" / "seed1" / "models"
                                / "knn_example.parquet")
    assert set(rows.loc[rows["seed"] == 1, "condition"]) <= set(evaluated["condition"])
    gap = pd.read_csv(models_run["tables"] / "progress_bar.csv")
    assert "external" in set(gap["Method"]) and set(MODELS) <= set(gap["Baseline"])


def test_a_partial_model_shrinks_the_common_test_set_and_every_table_adds_up(models_run):
    dropped = models_run["dropped"]
    split = {s: yaml.safe_load((models_run["root"] / "results" / "splits" / "adamson" / f"seed{s}" / "split.json")
                               .read_text())["test"] for s in SEEDS}
    perf = pd.read_csv(models_run["tables"] / "lsft_performance.csv")
    per_perturbation = pd.read_parquet(models_run["tables"] / "per_perturbation.parquet")
    for seed in SEEDS:
        common = set(per_perturbation.loc[(per_perturbation["seed"] == seed) & per_perturbation["in_common_test_set"],
                                          "condition"])
        assert not common & set(dropped[seed])
        # every baseline predicts the synthetic tests but one not measured; the partial model lacks 3 more
        assert len(common) >= len(split[seed]) - MISSING - 2
        seed_perf = pd.read_csv(models_run["tables"] / f"seed{seed}" / "lsft_performance.csv")
        assert set(seed_perf["Test Perturbations"]) == {len(common)}
    assert set(perf["Test Perturbations"]) == {sum(
        per_perturbation.loc[per_perturbation["seed"] == s, "in_common_test_set"].groupby(
            per_perturbation["condition"]).first().sum() for s in SEEDS)}
    summary = pd.read_csv(models_run["tables"] / "summary.csv").set_index("Statistic")["Value"]
    n_test = len(split[1])
    assert summary["Coverage of partial"].startswith(f"seed 1: {n_test - MISSING} of {n_test} test perturbations")
    for seed in SEEDS:
        for condition in dropped[seed]:
            assert "partial: not in the predictions of partial" in summary[f"Not predictable (seed {seed}): {condition}"]
    comparisons = pd.read_csv(models_run["tables"] / "model_comparisons.csv")
    assert set(comparisons["Model"]) == set(MODELS)
    assert comparisons["q"].between(0, 1).all() and (comparisons["q"] >= comparisons["p"] - 1e-12).all()


def test_changing_a_model_reruns_its_evaluation_and_the_bounds_and_adding_one_reruns_no_fit(models_run):
    root = models_run["root"]
    changed = root / "partial" / "adamson_seed1.csv"
    frame = pd.read_csv(changed)
    frame.iloc[0, 1:] += 0.01  # a new version of the model's predictions
    frame.to_csv(changed, index=False)
    jobs = planned_jobs(root, root=root)
    assert jobs["evaluate_model"] == 1
    # the model's genes may change the genes every compared method predicts (SPEC 7): the bounds follow them
    assert jobs["noise_ceiling"] == 1
    assert not {"global_fit", "lsft", "embedding", "split", "pseudobulk"} & set(jobs)
    assert {"dataset_tables", "figures"} <= set(jobs)
    snakemake(root, "--cores", "2", root=root)  # back to a finished run
    write_config(root, _config({**MODELS, "another": dict(MODELS["knn_example"])}))
    try:
        jobs = planned_jobs(root, root=root)
        assert jobs["evaluate_model"] == len(SEEDS) and jobs["noise_ceiling"] == 1
        assert not {"global_fit", "lsft", "embedding", "split", "pseudobulk"} & set(jobs)
    finally:
        write_config(root, _config(MODELS))


def test_a_bad_model_file_stops_the_run_before_any_table(models_run):
    root, tables = models_run["root"], models_run["tables"]
    bad = root / "broken"
    bad.mkdir(exist_ok=True)
    for seed in SEEDS:
        frame = pd.read_csv(root / "partial" / f"adamson_seed{seed}.csv")
        frame.iloc[1, 3] = np.nan
        frame.to_csv(bad / f"adamson_seed{seed}.csv", index=False)
    before = {p: p.stat().st_mtime_ns for p in tables.glob("*.csv")}
    write_config(root, _config({**MODELS, "broken": {"path": "broken/{dataset}_seed{seed}.csv",
                                                     "quantity": "expression"}}))
    try:
        proc = snakemake(root, "--cores", "2", check=False, root=root)
        assert proc.returncode != 0
        log = (root / "results" / "logs" / "evaluate_model" / "adamson" / "seed1" / "broken.log").read_text()
        assert "model 'broken', broken/adamson_seed1.csv (dataset adamson, split seed 1): NaN or infinite values" in log
        assert not (root / "results" / "adamson" / "default" / "seed1" / "models" / "broken.parquet").exists()
        assert {p: p.stat().st_mtime_ns for p in tables.glob("*.csv")} == before  # no table looks updated
        missing = root / "missing"
        write_config(root, _config({**MODELS, "absent": {"path": "missing/{dataset}_seed{seed}.h5ad",
                                                         "quantity": "expression"}}))
        proc = snakemake(root, "--cores", "2", check=False, root=root)
        assert proc.returncode != 0 and not missing.exists()
        log = (root / "results" / "logs" / "evaluate_model" / "adamson" / "seed1" / "absent.log").read_text()
        assert ("model 'absent', missing/adamson_seed1.h5ad (dataset adamson, split seed 1): the file does not "
                "exist") in log
        assert "results/logs/evaluate_model/adamson/seed1/absent.log" in proc.stdout + proc.stderr
        assert {p: p.stat().st_mtime_ns for p in tables.glob("*.csv")} == before
    finally:
        write_config(root, _config(MODELS))
