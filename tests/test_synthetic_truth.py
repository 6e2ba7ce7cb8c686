"""On synthetic data with a known low-rank truth, informative embeddings must win (SPEC 5)."""

import numpy as np
import pytest

from lsftbench.data.pseudobulk import pseudobulk
from lsftbench.data.split import gears_simulation_split
from lsftbench.data.synthetic.datasets import PRESETS, make_dataset
from lsftbench.embeddings.build import build_embedding
from lsftbench.evaluation.metrics import perturbation_metrics
from lsftbench.io import write_h5ad
from lsftbench.model.global_fit import global_predictions
from lsftbench.model.problem import make_problem

SPECS = {
    "lpm_selftrained": {"gene": {"type": "training_pca"}, "pert": {"type": "training_pca"}},
    "lpm_randomPertEmb": {"gene": {"type": "training_pca"}, "pert": {"type": "random", "seed": 1}},
    "mean_response": {"model": "mean", "pert": {"type": "training_pca"}},
}


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    path = tmp_path_factory.mktemp("truth") / "d.h5ad"
    adata = make_dataset("replogle_k562_essential", seed=5, n_genes=300, n_perts=150, cells_per_pert=25, n_ctrl=400)
    write_h5ad(adata, path)
    pb = pseudobulk(path)
    split = gears_simulation_split(list(adata.obs["condition"].astype(str)), seed=1)
    out = {}
    for name, spec in SPECS.items():
        problem = make_problem(pb, split, build_embedding(spec, pb, split, 10, dataset="d"))
        pred = global_predictions(problem, 0.1)
        out[name] = perturbation_metrics(pred, problem.y[:, problem.col(problem.test)], problem.top_idx).mean()
    return out


def test_selftrained_beats_random_perturbation_embedding(scores):
    assert scores["lpm_selftrained"]["pearson_r"] > scores["lpm_randomPertEmb"]["pearson_r"] + 0.2
    assert scores["lpm_selftrained"]["l2"] < scores["lpm_randomPertEmb"]["l2"]


def test_selftrained_beats_mean_response(scores):
    assert scores["lpm_selftrained"]["pearson_r"] > scores["mean_response"]["pearson_r"] + 0.2
    assert scores["lpm_selftrained"]["l2"] < scores["mean_response"]["l2"]


def test_generator_is_seeded_and_gears_shaped():
    a = make_dataset("adamson", seed=2, n_genes=50, n_perts=20, n_unmeasured=2, cells_per_pert=6, n_ctrl=30)
    b = make_dataset("adamson", seed=2, n_genes=50, n_perts=20, n_unmeasured=2, cells_per_pert=6, n_ctrl=30)
    assert (a.X != b.X).nnz == 0
    conds = set(a.obs["condition"].astype(str))
    assert "ctrl" in conds and len(conds) == 21
    assert all(c == "ctrl" or c.endswith("+ctrl") for c in conds)
    targets = {c.split("+")[0] for c in conds if c != "ctrl"}
    assert len(targets - set(a.var["gene_name"])) == 2  # perturbed genes that are not measured
    assert a.X.dtype == np.float32 and a.X.min() >= 0
    assert set(PRESETS) == {"adamson", "replogle_k562_essential", "replogle_rpe1_essential", "norman"}
