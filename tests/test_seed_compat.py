"""The seed protocol (SPEC 9.1): reproduces the leak on purpose, and says so in every output."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from lsftbench.global_fit import global_predictions
from lsftbench.problem import make_problem
from lsftbench.seed_compat import LEAK_LABEL, build_seed_embedding, seed_lsft
from lsftbench.split import seed_compat_split
from workflow_utils import snakemake, tiny_config, write_config

SELF = {"gene": {"type": "training_pca"}, "pert": {"type": "training_pca"}}


@pytest.fixture(scope="module")
def seed_setup(small_pb):
    split = seed_compat_split([c for c in small_pb.obs_names], seed=1)
    emb = build_seed_embedding(SELF, small_pb, split, 5)
    return split, emb, make_problem(small_pb, split, emb)


def test_test_embedding_is_the_projection_of_its_own_delta(small_pb, seed_setup):
    split, emb, _ = seed_setup
    x = np.asarray(small_pb.X)
    delta = x - x[small_pb.obs_names.get_loc("ctrl")]
    rows = small_pb.obs_names.get_indexer(split["train"])
    pca = PCA(n_components=5, svd_solver="full").fit(delta[rows])
    t = split["test"][0]
    expected = pca.transform(delta[[small_pb.obs_names.get_loc(t)]])[0]
    np.testing.assert_allclose(np.abs(emb.column(t)), np.abs(expected), atol=1e-10)
    assert emb.info["leaks_test_data"] is True


def test_ctrl_is_a_candidate_and_counts_in_train_size(seed_setup):
    split, _, problem = seed_setup
    assert "ctrl" in problem.train
    for pct in (1, 5, 10):
        res = seed_lsft(problem, pct, 0.1)
        assert res.n_neighbours == max(1, math.ceil(len(split["train"]) * pct / 100))


def test_one_neighbour_local_centre_predicts_that_neighbour(seed_setup):
    _, _, problem = seed_setup
    res = seed_lsft(problem, 0.1, 0.1)
    for i, t in enumerate(res.conditions):
        np.testing.assert_allclose(res.local[:, i], problem.y[:, problem.col(res.neighbours[i])[0]], atol=1e-12)


def test_global_fit_uses_row_mean_centre(seed_setup):
    _, _, problem = seed_setup
    pred = global_predictions(problem, 1e12)  # huge ridge: K -> 0, prediction -> centre
    centre = problem.y[:, problem.col(problem.train)].mean(axis=1)
    np.testing.assert_allclose(pred[:, 0], centre, atol=1e-8)


@pytest.mark.workflow
def test_workflow_labels_every_output(tmp_path):
    config = tiny_config(protocol="seed_compat")
    config["datasets"] = {"adamson": config["datasets"]["adamson"], "replogle_k562_essential": config["datasets"]["replogle_k562_essential"]}
    keep = ("lpm_selftrained", "lpm_randomPertEmb", "mean_response", "lpm_k562PertEmb")
    config["baselines"] = {k: v for k, v in config["baselines"].items() if k in keep}
    config["datasets"]["replogle_k562_essential"]["benchmark"] = False
    write_config(tmp_path, config)
    snakemake(tmp_path, "--cores", "2")
    tables = tmp_path / "results" / "tables" / "adamson"
    perf = pd.read_csv(tables / "lsft_performance.csv")
    assert set(perf["Protocol"]) == {"seed_compat"}
    assert set(perf["Baseline"]) == {"lpm_selftrained", "lpm_randomPertEmb", "mean_response"}
    for name in ("lsft_performance.md", "fraction_improved.md", "summary.md"):
        assert "LEAKS TEST DATA" in (tables / name).read_text()
    summary = pd.read_csv(tables / "summary.csv").set_index("Statistic")["Value"]
    assert summary["Protocol"] == LEAK_LABEL and "Not run: lpm_k562PertEmb" in summary.index
    assert "LEAKS TEST DATA" in (tmp_path / "results" / "tables" / "combined.md").read_text()
    assert b"LEAKS TEST DATA" in (tmp_path / "results" / "figures" / "adamson" / "local_vs_global.svg").read_bytes()
