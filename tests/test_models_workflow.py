"""Models of one's own in the workflow (SPEC 7.3): the README's worked example end to end, a model that misses
three test perturbations, a collapsed one; the README's commands for files other tools write (GEARS's predict
dict as a CSV, cells in cell-eval's form, raw counts per cell) and for our baselines out (``snakemake
export_predictions`` scored by cell-eval); what reruns when a model changes; a bad file stops the run.

One small run shared by the module: ``snakemake splits``, ``examples/knn_model.py`` on the exported splits
(exactly as the README says, in its three forms), the README's GEARS conversion on a stand-in for a trained
GEARS model, two more models derived from the example, then the run with the six models and the export.
"""

from __future__ import annotations

import re
import subprocess
import sys
from types import SimpleNamespace

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
    **yaml.safe_load((REPO / "examples" / "knn_model_cells.yaml").read_text())["models"],
    "gears": {"path": "predictions/gears_{dataset}_seed{seed}.csv", "quantity": "expression"},
}
README = (REPO / "README.md").read_text()
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
    forms = re.findall(r"^\.venv/bin/python (examples/knn_model\.py .* --form (?:cells|counts))$", README, re.M)
    assert len(forms) == 2
    for command in forms:  # the README's commands for cells and counts, verbatim but for the interpreter
        args = [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', command)]
        subprocess.run([sys.executable, str(REPO / args[0]), *args[1:]], cwd=root, capture_output=True, text=True,
                       check=True)
    gears = _readme_block("import pandas as pd\n\ntests = ")
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
        _run_gears_snippet(gears, root, seed, frame)
    write_config(root, _config(MODELS))
    snakemake(root, "--cores", "2", root=root)
    snakemake(root, "export_predictions", "--cores", "2", root=root)
    tables = root / "results" / "tables" / "default" / "adamson"
    return {"root": root, "tables": tables, "dropped": dropped}


def _readme_block(start: str) -> str:
    """The README's Python block that begins with ``start``."""
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README, re.S) if b.startswith(start)]
    assert len(blocks) == 1, start
    return blocks[0]


class _TrainedGears:
    """A stand-in for a trained GEARS model: ``predict`` as GEARS's (a dict keyed by the genes joined with ``_``, one
    array over its genes per perturbation), predicting the example model's means."""

    def __init__(self, means: pd.DataFrame) -> None:
        self.means = means

    def predict(self, pert_list: list[list[str]]) -> dict[str, np.ndarray]:
        by_key = {"+".join(c.split("+")[:1] if c.endswith("+ctrl") else c.split("+")): row
                  for c, row in self.means.iterrows()}
        return {"_".join(p): by_key["+".join(p)].to_numpy() for p in pert_list}


def _run_gears_snippet(code: str, root, seed: int, means: pd.DataFrame) -> None:
    """The README's GEARS lines, for this seed, with a stand-in for the trained model and its PertData."""
    pert_data = SimpleNamespace(adata=SimpleNamespace(var=pd.DataFrame({"gene_name": list(means.columns)})))
    code = code.replace("seed1", f"seed{seed}").replace("results/", f"{root}/results/").replace(
        "predictions/", f"{root}/predictions/")
    exec(compile(code, "README.md (GEARS)", "exec"), {"gears_model": _TrainedGears(means), "pert_data": pert_data})


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


def test_files_other_tools_write_score_as_the_predictions_they_hold(models_run):
    """The README's forms of the example model: GEARS's dict as a CSV gives the example's numbers exactly; its
    cells, log-normalised (cell-eval / STATE) and as raw counts (scale: counts), give each other's to float32."""
    root = models_run["root"] / "results" / "adamson" / "default"
    for seed in SEEDS:
        read = {m: pd.read_parquet(root / f"seed{seed}" / "models" / f"{m}.parquet")
                for m in ("knn_example", "gears", "knn_cells", "knn_counts")}
        assert all(list(t["condition"]) == list(read["knn_example"]["condition"]) for t in read.values())
        for metric in ("pearson_r", "l2", "mae"):
            np.testing.assert_allclose(read["gears"][metric], read["knn_example"][metric], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(read["knn_counts"][metric], read["knn_cells"][metric], rtol=1e-5, atol=1e-5)
        # Poisson cells around the predicted means: close to them, not equal
        assert abs(read["knn_cells"]["pearson_r"].mean() - read["knn_example"]["pearson_r"].mean()) < 0.1
    log = (models_run["root"] / "results" / "logs" / "evaluate_model" / "adamson" / "seed1" / "knn_counts.log").read_text()
    assert "labels read from obs['target_gene']" in log and "scale counts: each cell scaled to 10000 (the dataset's median per-cell total" in log
    assert "control rows ('non-targeting'): the model's own control, not evaluated" in log


@pytest.mark.filterwarnings("ignore:the string cache has been replaced")
def test_exported_baselines_scored_by_cell_eval_as_the_readme_says(models_run, monkeypatch):
    """`snakemake export_predictions`, then the README's cell-eval lines: pearson_delta and mae of lpm_selftrained's
    global fit equal the workflow's own per-perturbation numbers."""
    root = models_run["root"]
    monkeypatch.chdir(root)
    scope: dict = {}
    exec(compile(_readme_block("from cell_eval import MetricsEvaluator"), "README.md (cell-eval)", "exec"), scope)
    theirs = scope["per_perturbation"].to_pandas().set_index("perturbation")
    ours = pd.read_parquet(root / "results" / "adamson" / "default" / "seed1" / "global" / "lpm_selftrained.parquet")
    labels = [c.split("+")[0] for c in ours["condition"]]
    np.testing.assert_allclose(theirs.loc[labels, "pearson_delta"], ours["pearson_r"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(theirs.loc[labels, "mae"], ours["mae"], rtol=1e-6, atol=1e-6)
    manifest = pd.read_csv(root / "results" / "export" / "adamson" / "seed1" / "manifest.csv")
    assert {"lpm_selftrained · global fit", "lpm_selftrained · LSFT top 5%", "mean_response · kNN top 10%",
            "train mean", "no change", "random perturbation embedding"} <= set(manifest["method"])
    assert manifest["shift"].nunique() == 1 and (root / "results" / "export" / "adamson" / "seed2" / "observed.h5ad").exists()
