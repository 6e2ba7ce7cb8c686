"""The seed protocol (SPEC 9.1): computes what the published LSFT code computes, leak included, and
says so in every output.

``tests/data/seed_compat/published_metrics.csv`` holds the published code's per-perturbation metrics
on the input :func:`write_parity_input` generates; ``docs/seed_compat.md`` gives the commands that
regenerate it (they run the published code from a /tmp checkout).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from workflow_utils import SHARED_RUN_DATASETS

from lsftbench.data.h5ad import cell_conditions
from lsftbench.data.split import read_split_json, seed_compat_split
from lsftbench.data.synthetic.checkpoints import (
    write_synthetic_scfoundation_checkpoint,
    write_synthetic_scgpt_checkpoint,
)
from lsftbench.data.synthetic.datasets import gene_pool, latent_loadings, make_dataset
from lsftbench.data.synthetic.go_graph import write_synthetic_go_graph
from lsftbench.embeddings.pretrained import extract_scfoundation
from lsftbench.evaluation.metrics import perturbation_metrics
from lsftbench.io import write_h5ad
from lsftbench.model.global_fit import global_predictions
from lsftbench.model.problem import load_problem, make_problem
from lsftbench.model.seed_compat import (
    LEAK_LABEL,
    PUBLISHED_VERSIONS,
    build_seed_embedding,
    gears_go_table,
    published_pseudobulk,
    scgpt_encoder_table,
    published_center,
    seed_global_predictions,
    seed_lsft,
)

SELF = {"gene": {"type": "training_pca"}, "pert": {"type": "training_pca"}}
FIXTURE = Path(__file__).parent / "data" / "seed_compat" / "published_metrics.csv"

#: The published code's baselines (BaselineType values) with this project's specs.
PARITY_BASELINES = {
    "lpm_selftrained": SELF,
    "lpm_randomGeneEmb": {"gene": {"type": "random"}, "pert": {"type": "training_pca"}},
    "lpm_randomPertEmb": {"gene": {"type": "training_pca"}, "pert": {"type": "random"}},
    "lpm_scgptGeneEmb": {"gene": {"type": "scgpt"}, "pert": {"type": "training_pca"}},
    "lpm_scFoundationGeneEmb": {"gene": {"type": "scfoundation"}, "pert": {"type": "training_pca"}},
    "lpm_gearsPertEmb": {"gene": {"type": "training_pca"}, "pert": {"type": "go_graph"}},
    "mean_response": {"model": "mean", "pert": {"type": "training_pca"}},
}
PARITY_PCTS = (1, 10, 50)
PARITY_SEED, PARITY_DIM, PARITY_RIDGE = 1, 10, 0.1
TOLERANCE = 1e-5


# --------------------------------------------------------------------------------------------
# The parity input (shared with the published-code run documented in docs/seed_compat.md)
# --------------------------------------------------------------------------------------------


def write_parity_input(directory: str | Path) -> dict[str, Path]:
    """Write the side-by-side input: cells, a split file and the embedding sources.

    600 genes and 100 perturbations, so the published PCA of the 71 training columns uses the
    randomized solver (as on the real datasets); 10 % of the genes are missing from each pretrained
    vocabulary and 15 % from the GO graph (zero rows / columns in the published code).
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    adata = make_dataset("adamson", seed=1, n_genes=600, n_perts=100, n_unmeasured=3, cells_per_pert=20, n_ctrl=200)
    paths = {"data": out / "perturb_processed.h5ad", "split": out / "split.json", "scgpt": out / "scgpt",
             "scfoundation": out / "scfoundation" / "models.ckpt", "gene_list": out / "scfoundation" / "gene_list.tsv",
             "go_csv": out / "go_essential_all.csv"}
    adata.write_h5ad(paths["data"])
    split = seed_compat_split(list(cell_conditions(adata)), seed=PARITY_SEED)
    paths["split"].write_text(json.dumps({k: sorted(v) for k, v in split.items()}, indent=1) + "\n")
    genes = list(adata.var["gene_name"])
    rng = np.random.default_rng(7)
    signal = latent_loadings(3)
    extra = list(gene_pool()[600:620])  # vocabulary genes the dataset does not measure

    def vocabulary(share: float) -> list[str]:
        return [g for g in genes if rng.random() < share] + extra

    write_synthetic_scgpt_checkpoint(paths["scgpt"], vocabulary(0.9), dim=16, seed=0, signal=signal)
    paths["scfoundation"].parent.mkdir(exist_ok=True)
    write_synthetic_scfoundation_checkpoint(paths["scfoundation"], paths["gene_list"], vocabulary(0.9), dim=12, seed=1,
                                            signal=signal)
    write_synthetic_go_graph(paths["go_csv"], vocabulary(0.85), seed=2, signal=signal)
    return paths


def seed_compat_metrics(paths: dict[str, Path], versions: tuple[str, ...] = tuple(PUBLISHED_VERSIONS)) -> pd.DataFrame:
    """Our per-perturbation metrics on the parity input, in the fixture's layout.

    Goes through the files the workflow passes between jobs (pseudobulk h5ad, split JSON,
    embedding npz), so their dtypes and orders are part of the check.
    """
    import anndata as ad

    work = paths["data"].parent / "ours"
    work.mkdir(exist_ok=True)
    write_h5ad(published_pseudobulk(paths["data"]), work / "pseudobulk.h5ad")
    pb = ad.read_h5ad(work / "pseudobulk.h5ad")
    split = read_split_json(paths["split"], pb.obs_names)
    tables = {"scgpt": scgpt_encoder_table(paths["scgpt"]),
              "scfoundation": extract_scfoundation(paths["scfoundation"], paths["gene_list"]),
              "go_graph": gears_go_table(paths["go_csv"])}
    frames = []
    for name, spec in PARITY_BASELINES.items():
        gene, pert = spec.get("gene", {}).get("type"), spec["pert"]["type"]
        emb = build_seed_embedding(spec, pb, split, PARITY_DIM, seed=PARITY_SEED, gene_table=tables.get(gene),
                                   pert_table=tables.get(pert))
        emb.save(work / f"{name}.npz")
        problem = load_problem(str(work / "pseudobulk.h5ad"), str(paths["split"]), str(work / f"{name}.npz"))
        obs = problem.y[:, problem.col(problem.test)]
        glob = perturbation_metrics(seed_global_predictions(problem, PARITY_RIDGE), obs, problem.top_idx)
        for version in versions:
            for pct in PARITY_PCTS:
                res = seed_lsft(problem, pct, PARITY_RIDGE, version=version)
                loc = perturbation_metrics(res.local, obs, problem.top_idx)
                noise = np.asarray(problem.embedding.info["ctrl_delta"], dtype=np.float64)
                frames.append(pd.DataFrame({
                    "version": version, "baseline": name, "top_pct": pct,
                    "condition": [c.replace("+ctrl", "") for c in res.conditions],  # the published names
                    "local_train_size": res.n_neighbours,
                    "local_pearson_r": loc["pearson_r"], "local_l2": loc["l2"],
                    "global_pearson_r": glob["pearson_r"], "global_l2": glob["l2"],
                    "ctrl_only": [nb == ["ctrl"] and published_center(version) == "local" for nb in res.neighbours],
                    "is_ctrl_noise": [np.array_equal(res.local[:, j], noise) for j in range(len(res.conditions))],
                }))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def parity_input(tmp_path_factory):
    return write_parity_input(tmp_path_factory.mktemp("seed_compat_parity"))


def test_matches_published_code(parity_input):
    """Every baseline, both published versions: per-perturbation metrics within 1e-5 of the fixture.

    Rows whose single neighbour is ``ctrl`` under local centring are the exception: there the
    published prediction *is* ``ctrl``'s Δ, the rounding difference of a dense and a sparse float32
    mean of the same cells (docs/seed_compat.md), whose bits depend on the CPU's SIMD width. For
    them the check is that our prediction is exactly that Δ as computed on this machine.
    """
    ours = seed_compat_metrics(parity_input)
    published = pd.read_csv(FIXTURE, float_precision="round_trip")
    keys = ["version", "baseline", "top_pct", "condition"]
    # mean_response: the published LSFT cannot run it (its "mean" embedding source raises), so
    # the fixture holds only its global fit; our LSFT rows for it (the kNN mean) have no counterpart.
    ours.loc[ours["baseline"] == "mean_response", ["local_train_size", "local_pearson_r", "local_l2"]] = np.nan
    merged = published.merge(ours, on=keys, how="left", suffixes=("_pub", "_ours"), validate="one_to_one")
    assert len(merged) == len(ours) == len(published) and merged["global_l2_ours"].notna().all()
    assert set(published["baseline"]) == set(PARITY_BASELINES)
    assert set(published["version"]) == set(PUBLISHED_VERSIONS)
    noise_rows = merged["ctrl_only"] & (merged["baseline"] != "mean_response")
    assert noise_rows.sum() == 5 and (merged["top_pct"][noise_rows] == 1).all()
    assert merged.loc[noise_rows, "is_ctrl_noise"].all()
    merged.loc[noise_rows, ["local_pearson_r_pub", "local_pearson_r_ours", "local_l2_pub", "local_l2_ours"]] = 0.0
    for column in ("local_train_size", "local_pearson_r", "local_l2", "global_pearson_r", "global_l2"):
        pub, our = merged[f"{column}_pub"].to_numpy(), merged[f"{column}_ours"].to_numpy()
        np.testing.assert_array_equal(np.isnan(our), np.isnan(pub), err_msg=column)
        # L2 (about 3-12 here) to the same relative precision: under global centring (v1.0.0) a
        # fit with n <= d neighbours carries a rounding-noise PCA component (docs/seed_compat.md).
        rtol, atol = (TOLERANCE, 0) if column.endswith("l2") else (0, TOLERANCE)
        np.testing.assert_allclose(our, pub, rtol=rtol, atol=atol, equal_nan=True, err_msg=column)


# --------------------------------------------------------------------------------------------
# The leak, and the protocol's other rules
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_pb(small_h5ad):
    return published_pseudobulk(small_h5ad)


@pytest.fixture(scope="module")
def seed_setup(seed_pb):
    split = seed_compat_split(list(seed_pb.obs_names), seed=1)
    emb = build_seed_embedding(SELF, seed_pb, split, 5, seed=1)
    return split, emb, make_problem(seed_pb, split, emb)


def test_published_pseudobulk_is_the_float32_mean(small_h5ad, small_pb, seed_pb):
    assert seed_pb.X.dtype == np.float32 and seed_pb.uns["protocol"] == "seed_compat"
    assert set(seed_pb.obs_names) == set(small_pb.obs_names)
    np.testing.assert_allclose(seed_pb.X, small_pb[seed_pb.obs_names].X, rtol=1e-5, atol=1e-6)
    import anndata as ad

    cells = list(cell_conditions(ad.read_h5ad(small_h5ad, backed="r")))
    assert list(seed_pb.obs_names) == list(dict.fromkeys(cells))  # first-cell order, ctrl where it first appears


def test_columns_follow_the_first_cell_order(seed_pb, seed_setup):
    split, emb, _ = seed_setup
    order = {c: k for k, c in enumerate(seed_pb.obs_names)}
    n_train = len(split["train"])
    assert list(emb.conditions[:n_train]) == sorted(split["train"], key=order.__getitem__)
    assert list(emb.conditions[n_train:]) == sorted(split["test"], key=order.__getitem__)


def test_needs_the_published_pseudobulk(small_pb, seed_setup):
    with pytest.raises(ValueError, match="published pseudobulk"):
        build_seed_embedding(SELF, small_pb, seed_setup[0], 5, seed=1)


def test_test_embedding_is_the_projection_of_its_own_delta(seed_pb, seed_setup):
    from sklearn.decomposition import PCA

    split, emb, _ = seed_setup
    x = np.asarray(seed_pb.X)
    delta = x - x[seed_pb.obs_names.get_loc("ctrl")]
    train = list(emb.conditions[: len(split["train"])])
    pca = PCA(n_components=5, random_state=1).fit(delta[seed_pb.obs_names.get_indexer(train)])
    t = split["test"][0]
    expected = pca.transform(delta[[seed_pb.obs_names.get_loc(t)]])[0]
    np.testing.assert_allclose(emb.column(t), expected, rtol=0, atol=1e-6)
    assert emb.info["leaks_test_data"] is True


def test_ctrl_is_a_candidate_and_counts_in_train_size(seed_setup):
    split, _, problem = seed_setup
    assert "ctrl" in problem.train
    for pct in (1, 5, 10):
        res = seed_lsft(problem, pct, 0.1)
        assert res.n_neighbours == max(1, math.ceil(len(split["train"]) * pct / 100))


def test_one_neighbour_local_centre_predicts_that_neighbour(seed_setup):
    _, _, problem = seed_setup
    res = seed_lsft(problem, 0.1, 0.1, version="969de7a")
    for i in range(len(res.conditions)):
        np.testing.assert_allclose(res.local[:, i], problem.y[:, problem.col(res.neighbours[i])[0]], atol=1e-6)


def test_one_neighbour_global_centre_predicts_the_training_mean(seed_setup):
    # one local observation: its PCA score is 0, so K = 0 and the prediction is the centre
    _, _, problem = seed_setup
    res = seed_lsft(problem, 0.1, 0.1, version="v1.0.0")
    centre = problem.y[:, problem.col(problem.train)].mean(axis=1)
    np.testing.assert_allclose(res.local, np.repeat(centre[:, None], len(res.conditions), axis=1), atol=1e-6)


def test_global_fit_uses_row_mean_centre(seed_setup):
    _, _, problem = seed_setup
    centre = problem.y[:, problem.col(problem.train)].mean(axis=1)
    for predictions in (seed_global_predictions(problem, 1e12), global_predictions(problem, 1e12)):
        np.testing.assert_allclose(predictions[:, 0], centre, atol=1e-6)  # huge ridge: K -> 0


def test_random_embeddings_are_the_published_draws(seed_pb, seed_setup):
    split, _, _ = seed_setup
    spec = {"gene": {"type": "random", "seed": 99}, "pert": {"type": "random"}}  # the spec's seed is not used
    emb = build_seed_embedding(spec, seed_pb, split, 5, seed=3)
    rng = np.random.default_rng(3)
    n_train, n_test = len(split["train"]), len(split["test"])
    np.testing.assert_array_equal(emb.A, np.random.default_rng(3).normal(0, 1, size=(seed_pb.n_vars, 5)))
    np.testing.assert_array_equal(emb.B[:, :n_train], rng.normal(0, 1, size=(5, n_train)))
    np.testing.assert_array_equal(emb.B[:, n_train:], rng.normal(0, 1, size=(5, n_test)))


def test_unknown_version_is_an_error(seed_setup):
    with pytest.raises(ValueError, match="unknown published version"):
        seed_lsft(seed_setup[2], 5, 0.1, version="local")


@pytest.mark.workflow
def test_workflow_labels_every_output(shared_run):
    """The shared run's seed_compat outputs (``snakemake audit``) say they leak test data, everywhere."""
    results = shared_run.results
    dataset = SHARED_RUN_DATASETS[0]
    tables = results / "tables" / "seed_compat" / dataset
    perf = pd.read_csv(tables / "lsft_performance.csv")
    assert set(perf["Protocol"]) == {"seed_compat"}
    for name in ("lsft_performance.md", "fraction_improved.md", "summary.md", "seed1/lsft_performance.md"):
        assert "LEAKS TEST DATA" in (tables / name).read_text(), name
    summary = pd.read_csv(tables / "summary.csv").set_index("Statistic")["Value"]
    assert summary["Protocol"] == LEAK_LABEL and "Not run: lpm_k562PertEmb" in summary.index
    assert "cannot be regenerated" in summary["Split"]
    assert "LEAKS TEST DATA" in (results / "tables" / "seed_compat" / "combined.md").read_text()
    figures = results / "figures" / "seed_compat"
    assert b"LEAKS TEST DATA" in (figures / dataset / "local_vs_global.svg").read_bytes()
    assert b"LEAKS TEST DATA" in (figures / "forest.svg").read_bytes()
