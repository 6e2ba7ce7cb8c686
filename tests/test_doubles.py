"""Double perturbations (SPEC 10): the splits with their subgroups, b_AB = b_A + b_B in every linear baseline, the
additive baseline, LSFT and kNN of a double, and a model's B+A rows; each against an answer computed here from the
SPEC's formulas, not by the code under test."""

from __future__ import annotations

import json
import math

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from lsftbench.data.split import SUBGROUPS, export_split, gears_simulation_subgroups
from lsftbench.data.synthetic.doubles import make_doubles_dataset
from lsftbench.data.synthetic.presets import PRESETS, DoublesPreset
from lsftbench.embeddings.build import build_embedding
from lsftbench.evaluation.scoring import score_global_fit, score_lsft_shard, score_model
from lsftbench.io import read_json, read_npz, write_h5ad, write_json
from lsftbench.model.lsft import lsft, lsft_reference
from lsftbench.model.problem import make_problem
from lsftbench.model.protocol import LsftSettings, get_protocol
from lsftbench.pipeline.config import DOUBLES_PRESETS, baselines_for, has_double_perturbations, skipped_baselines

TINY = dict(n_genes=80, n_targets=12, n_doubles=30, cells_per_pert=8, n_ctrl=40, interaction_pool=20)
DIM, RIDGE = 5, 0.1
SELFTRAINED = {"gene": {"type": "training_pca"}, "pert": {"type": "training_pca"}}
ADDITIVE = {"model": "additive", "pert": {"type": "training_pca"}}
SPECS = {
    "lpm_selftrained": SELFTRAINED,
    "lpm_randomGeneEmb": {"gene": {"type": "random", "seed": 1}, "pert": {"type": "training_pca"}},
    "lpm_randomPertEmb": {"gene": {"type": "training_pca"}, "pert": {"type": "random", "seed": 1}},
    "mean_response": {"model": "mean", "pert": {"type": "training_pca"}},
    "additive": ADDITIVE,
}


@pytest.fixture(scope="module")
def norman(tmp_path_factory):
    """A tiny Norman stand-in on disk, its pseudobulk, the paper's split (seed 1, through the protocol, with its
    subgroups) and every baseline's embedding, as the pipeline's files."""
    from lsftbench.data.pseudobulk import pseudobulk

    root = tmp_path_factory.mktemp("doubles")
    write_h5ad(make_doubles_dataset("norman", seed=1, **TINY), root / "data.h5ad")
    pb = pseudobulk(root / "data.h5ad")
    write_h5ad(pb, root / "pb.h5ad")
    result = get_protocol("default").split(root / "data.h5ad", seed=1, method="paper_doubles")
    write_json(result.document(), root / "split.json")
    for name, spec in SPECS.items():
        build_embedding(spec, pb, result.split, DIM, dataset="norman").save(root / f"{name}.npz")
    return {"root": root, "pb": pb, "split": result.split, "result": result}


def _x(pb) -> tuple[np.ndarray, pd.Index]:
    return np.asarray(pb.X, dtype=np.float64), pd.Index(pb.obs_names)


def _delta(pb, condition: str) -> np.ndarray:
    x, names = _x(pb)
    return x[names.get_loc(condition)] - x[names.get_loc("ctrl")]


def _fit(norman, name: str):
    root = norman["root"]
    return score_global_fit("default", root / "pb.h5ad", root / "split.json", root / f"{name}.npz",
                            ridge=None if name in ("additive", "mean_response") else RIDGE, top_genes=1000,
                            min_predictable_tests=1, keys={"dataset": "norman", "seed": 1, "baseline": name})


def _shard(norman, name: str, pct: float):
    root = norman["root"]
    return score_lsft_shard("default", root / "pb.h5ad", root / "split.json", root / f"{name}.npz", None, top_pct=pct,
                            chunk=0, n_chunks=1, settings=LsftSettings(ridge=RIDGE), top_genes=1000,
                            keys={"dataset": "norman", "seed": 1, "baseline": name})


# --------------------------------------------------------------------------------------------------
# splits
# --------------------------------------------------------------------------------------------------


def _spec_paper_split(conditions, seed):
    """SPEC 10's transcription of the paper's prepare_perturbation_data.py (global legacy RNG)."""
    conds = np.asarray(pd.Categorical(conditions).categories)
    singles = [c for c in conds if "ctrl" in c]
    np.random.seed(seed)
    doubles = np.setdiff1d(conds, singles)
    train = np.random.choice(doubles, len(doubles) // 2, replace=False)
    rest = np.setdiff1d(doubles, train)
    return {"train": set(singles) | set(train), "test": list(rest[: len(rest) // 2]), "val": list(rest[len(rest) // 2 :])}


@pytest.mark.parametrize("seed", [1, 2, 3, 7])
def test_paper_doubles_split_of_the_data_file_equals_the_spec(norman, seed):
    """Through the protocol's split (what the split rule runs with split.method: paper_doubles)."""
    root = norman["root"]
    state = np.random.get_state()
    try:
        obs = ad.read_h5ad(root / "data.h5ad", backed="r")
        ref = _spec_paper_split(list(obs.obs["condition"].astype(str)), seed)
        obs.file.close()
    finally:
        np.random.set_state(state)
    result = get_protocol("default").split(root / "data.h5ad", seed=seed, method="paper_doubles")
    assert set(result.split["train"]) == ref["train"]
    assert result.split["test"] == ref["test"] and result.split["val"] == ref["val"]
    # every single trains, so every test double is combo_seen2 (both genes' singles seen)
    assert result.subgroups == {c: "combo_seen2" for c in ref["test"]}
    assert list(result.document()) == ["train", "val", "test", "subgroups"]


def test_gears_split_writes_gears_own_subgroups(norman):
    """The simulation split's file maps each test condition to GEARS's subgroup (parity with GEARS 0.1.2's own
    splitter for several seeds is tests/test_split.py::test_gears_simulation_subgroups_match_gears)."""
    root = norman["root"]
    obs = ad.read_h5ad(root / "data.h5ad", backed="r")
    column = list(obs.obs["condition"].astype(str))
    obs.file.close()
    seen = set()
    for seed in (1, 2, 3):
        result = get_protocol("default").split(root / "data.h5ad", seed=seed)
        expected = gears_simulation_subgroups(column, seed=seed)["test"]
        assert result.subgroups == {c: g for g in SUBGROUPS for c in expected[g]}
        assert sorted(result.subgroups) == sorted(result.split["test"])
        seen |= set(result.subgroups.values())
    assert seen == set(SUBGROUPS)
    with pytest.raises(ValueError, match="split.method"):
        get_protocol("default").split(root / "data.h5ad", seed=1, method="nonsense")


def test_exported_split_has_the_subgroup_column(norman, tmp_path):
    root = norman["root"]
    outputs = [tmp_path / n for n in ("split.json", "split.pkl", "test_conditions.csv", "genes.csv", "control_mean.csv")]
    export_split(root / "split.json", root / "pb.h5ad", root / "data.h5ad", outputs, dataset="norman", seed=1)
    tests = pd.read_csv(tmp_path / "test_conditions.csv", keep_default_na=False)
    assert list(tests.columns) == ["condition", "target_gene", "subgroup"]
    assert dict(zip(tests["condition"], tests["subgroup"])) == norman["result"].subgroups
    assert set(read_json(tmp_path / "split.json")) == {"train", "val", "test"}  # what GEARS's custom split reads


# --------------------------------------------------------------------------------------------------
# predictions of a double
# --------------------------------------------------------------------------------------------------


def test_additive_is_the_sum_of_the_observed_singles_exactly(norman):
    pb, split = norman["pb"], norman["split"]
    fit = _fit(norman, "additive")
    assert fit.problem.test == split["test"] and not fit.problem.test_not_predictable
    for j, double in enumerate(fit.problem.test):
        a, b = double.split("+")
        expected = _delta(pb, f"{a}+ctrl") + _delta(pb, f"{b}+ctrl")
        np.testing.assert_array_equal(fit.predicted[:, j], expected)
    shard = _shard(norman, "additive", 10)  # LSFT leaves it as it is; kNN is the neighbours' mean
    np.testing.assert_array_equal(shard.result.local, fit.predicted)
    assert np.abs(shard.result.knn - fit.predicted).max() > 0
    assert shard.table["subgroup"].tolist() == ["combo_seen2"] * len(split["test"])


def test_additive_without_a_training_single_is_not_predictable(norman, tmp_path):
    pb, split = norman["pb"], norman["split"]
    double = split["test"][0]
    gene = double.split("+")[0]
    moved = dict(split, train=[c for c in split["train"] if c != f"{gene}+ctrl"], val=split["val"] + [f"{gene}+ctrl"])
    problem = make_problem(pb, moved, build_embedding(ADDITIVE, pb, moved, DIM, dataset="n"), every_condition=True)
    lacking = [c for c in split["test"] if gene in c.split("+")]
    assert problem.test_not_predictable == lacking and double in lacking
    assert problem.reasons[double] == f"the single perturbation of {gene} is not a training condition " \
                                      "(the additive baseline needs both)"
    other = double.split("+")[1]
    both = dict(moved, train=[c for c in moved["train"] if c != f"{other}+ctrl"], val=moved["val"] + [f"{other}+ctrl"])
    problem = make_problem(pb, both, build_embedding(ADDITIVE, pb, both, DIM, dataset="n"), every_condition=True)
    assert problem.reasons[double] == f"the single perturbations of {gene} and {other} are not training conditions " \
                                      "(the additive baseline needs both)"
    single = next(c for c in split["train"] if c.endswith("+ctrl"))  # a held-out single: not additive's to predict
    held = dict(split, train=[c for c in split["train"] if c != single], test=split["test"] + [single])
    problem = make_problem(pb, held, build_embedding(ADDITIVE, pb, held, DIM, dataset="n"), every_condition=True)
    assert problem.reasons[single] == "the additive baseline predicts double perturbations only"


def _spec_training_pca(pb, split, dim):
    """SPEC 4: genes × train conditions (ctrl included) of x̄, each column centred over genes, top-d left singular
    vectors scaled by the singular values."""
    x, names = _x(pb)
    xt = x[names.get_indexer(split["train"])].T
    xt = xt - xt.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(xt, full_matrices=False)
    return u[:, :dim] * s[:dim]


def _spec_b(scores, genes: pd.Index, condition: str) -> np.ndarray:
    """SPEC 4 and 10: ctrl 0, a single its gene's score row, a double b_A + b_B."""
    parts = [g for g in condition.split("+") if g != "ctrl"]
    out = np.zeros(scores.shape[1])
    for g in parts:
        out = out + scores[genes.get_loc(g)]
    return out


def test_lpm_selftrained_predicts_a_double_as_a_k_of_the_summed_embeddings(norman):
    """Δ̂_AB = A K (b_A + b_B) + centre, with A, B, K and the centre recomputed from SPEC 4, 5 and 10."""
    pb, split = norman["pb"], norman["split"]
    genes = pd.Index(pb.var_names)
    scores = _spec_training_pca(pb, split, DIM)
    train = split["train"]
    y = np.column_stack([_delta(pb, c) for c in train])  # ctrl included: its Δ is 0
    b = np.column_stack([_spec_b(scores, genes, c) for c in train])
    center = y.mean(axis=1)
    a = scores
    k = np.linalg.solve(a.T @ a + RIDGE * np.eye(DIM), a.T @ (y - center[:, None]) @ b.T) @ np.linalg.inv(
        b @ b.T + RIDGE * np.eye(DIM))
    expected = np.column_stack([a @ k @ _spec_b(scores, genes, t) + center for t in split["test"]])
    fit = _fit(norman, "lpm_selftrained")
    assert fit.problem.test == split["test"] and all("+ctrl" not in c for c in split["test"])
    np.testing.assert_allclose(fit.predicted, expected, rtol=1e-8, atol=1e-10 * np.abs(expected).max())
    # the training doubles are columns of the fit too (b_A + b_B), not only the singles
    assert sum("ctrl" not in c for c in fit.problem.train) == len(train) - 1 - sum("+ctrl" in c for c in train)


def test_every_linear_embedding_of_a_double_is_the_sum_of_its_singles(norman):
    from lsftbench.embeddings.build import Embedding

    split = norman["split"]
    singles = {c.split("+")[0]: c for c in split["train"] if c.endswith("+ctrl")}
    for name in ("lpm_selftrained", "lpm_randomGeneEmb", "lpm_randomPertEmb"):
        emb = Embedding.load(norman["root"] / f"{name}.npz")
        for double in [c for c in emb.conditions if "ctrl" not in c]:
            a, b = double.split("+")
            np.testing.assert_array_equal(emb.column(double), emb.column(singles[a]) + emb.column(singles[b]))
        assert not emb.info["not_predictable"]


@pytest.mark.parametrize("name", ["lpm_selftrained", "lpm_randomPertEmb", "mean_response", "additive"])
@pytest.mark.parametrize("pct", [5, 25])
def test_lsft_neighbours_of_a_double_are_its_cosine_ranking(norman, name, pct):
    """The neighbours of each test double = the training perturbations (singles and doubles, ctrl excluded) ranked
    by the cosine of b_AB with their columns, ties in training order; n = max(1, ceil(n_train K / 100))."""
    from lsftbench.embeddings.build import Embedding

    split = norman["split"]
    emb = Embedding.load(norman["root"] / f"{name}.npz")
    candidates = [c for c in split["train"] if c != "ctrl"]
    n = max(1, math.ceil(len(candidates) * pct / 100))
    shard = _shard(norman, name, pct)
    assert shard.result.conditions == split["test"]
    for t, got in zip(split["test"], shard.result.neighbours):
        bt = emb.column(t)
        sims = [float(bt @ emb.column(c) / (np.linalg.norm(bt) * np.linalg.norm(emb.column(c)))) for c in candidates]
        ranked = sorted(range(len(candidates)), key=lambda j: -sims[j])  # stable: training order on ties
        assert got == [candidates[j] for j in ranked[:n]], t
    assert any("ctrl" not in c for row in shard.result.neighbours for c in row)  # training doubles are neighbours


@pytest.mark.parametrize("center", ["local", "global"])
def test_lsft_refit_of_doubles_equals_the_plain_loop(norman, center):
    """The fast path's local refit of b_AB (Gram matrix, summed target rows) equals the plain loop's."""
    pb, split = norman["pb"], norman["split"]
    problem = make_problem(pb, split, build_embedding(SELFTRAINED, pb, split, DIM, dataset="n"))
    fast, ref = lsft(problem, 25, RIDGE, center=center), lsft_reference(problem, 25, RIDGE, center=center)
    assert fast.neighbours == ref.neighbours
    assert np.abs(fast.local - ref.local).max() <= 1e-10 * np.abs(ref.local).max()
    np.testing.assert_allclose(fast.knn, ref.knn, rtol=0, atol=1e-12)


def test_mean_response_predicts_every_double_with_the_training_mean(norman):
    pb, split = norman["pb"], norman["split"]
    fit = _fit(norman, "mean_response")
    expected = np.mean([_delta(pb, c) for c in split["train"] if c != "ctrl"], axis=0)  # singles and doubles
    np.testing.assert_allclose(fit.predicted, np.repeat(expected[:, None], len(split["test"]), axis=1),
                               rtol=1e-12, atol=1e-14)


def test_a_double_with_an_unembeddable_gene_is_not_predictable(norman, tmp_path):
    """A double one of whose genes has no embedding is reported not predictable, with its reason (as a single)."""
    pb, split = norman["pb"], norman["split"]
    double = split["test"][0]
    gene = double.split("+")[1]
    write_json(dict(split), tmp_path / "split.json")
    # training PCA: the gene is not measured
    unmeasured = pb[:, [g != gene for g in pb.var_names]].copy()
    write_h5ad(unmeasured, tmp_path / "pb.h5ad")
    build_embedding(SELFTRAINED, unmeasured, split, DIM, dataset="n").save(tmp_path / "self.npz")
    # a gene table without the gene
    table = pd.DataFrame(np.random.default_rng(0).normal(size=(pb.n_vars, 4)), index=pb.var_names)
    spec = {"gene": {"type": "training_pca"}, "pert": {"type": "table", "path": "t.tsv"}}
    build_embedding(spec, pb, split, DIM, dataset="n", pert_table=table.drop(index=gene)).save(tmp_path / "table.npz")
    write_h5ad(pb, tmp_path / "pb_all.h5ad")
    for emb, data, why in (("self", "pb.h5ad", "not measured"), ("table", "pb_all.h5ad", "not in the gene table")):
        fit = score_global_fit("default", tmp_path / data, tmp_path / "split.json", tmp_path / f"{emb}.npz", ridge=RIDGE,
                               top_genes=1000, min_predictable_tests=1, keys={"dataset": "n", "seed": 1, "baseline": emb})
        lacking = [c for c in split["test"] if gene in c.split("+")]
        assert fit.problem.test_not_predictable == lacking and double not in fit.problem.test
        fit.write(tmp_path / f"{emb}.parquet", tmp_path / f"{emb}.fit.npz", tmp_path / f"{emb}_shared")
        reasons = json.loads(str(read_npz(tmp_path / f"{emb}.fit.npz", ["not_predictable"])["not_predictable"]))
        assert reasons[double] == f"double perturbation: gene {gene} has no embedding ({why})"
        assert set(reasons) == set(lacking)


@pytest.mark.parametrize("quantity", ["delta", "expression"])
def test_a_model_file_with_b_plus_a_rows_gives_identical_numbers(norman, tmp_path, quantity):
    pb, split = norman["pb"], norman["split"]
    root = norman["root"]
    x, names = _x(pb)
    rng = np.random.default_rng(5)
    values = rng.normal(size=(len(split["test"]), pb.n_vars)) + (x[names.get_loc("ctrl")] if quantity == "expression"
                                                                    else 0.0)
    tables = {}
    for order in ("as_written", "reversed"):
        labels = split["test"] if order == "as_written" else ["+".join(c.split("+")[::-1]) for c in split["test"]]
        frame = pd.DataFrame(values, index=labels, columns=list(pb.var_names)).rename_axis("condition").reset_index()
        frame.to_csv(tmp_path / f"{order}.csv", index=False)
        tables[order] = score_model(tmp_path / f"{order}.csv", root / "pb.h5ad", root / "split.json", quantity=quantity,
                                    top_genes=1000, keys={"dataset": "norman", "seed": 1, "model": "mine"})
    assert tables["reversed"].conditions == tables["as_written"].conditions == split["test"]
    np.testing.assert_array_equal(tables["reversed"].predicted, tables["as_written"].predicted)
    for column, got in tables["reversed"].table.items():
        np.testing.assert_array_equal(got, tables["as_written"].table[column], err_msg=column)


# --------------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------------


def test_additive_is_skipped_where_there_are_no_doubles():
    config = {"protocol": "default", "datasets": {"norman": {"source": "synthetic"}, "adamson": {"source": "synthetic"},
                                                  "mine": {"source": "synthetic", "preset": "norman"}},
              "baselines": {"lpm_selftrained": SELFTRAINED, "additive": ADDITIVE}}
    assert baselines_for(config, "norman") == baselines_for(config, "mine") == ["lpm_selftrained", "additive"]
    assert baselines_for(config, "adamson") == ["lpm_selftrained"]
    assert "adamson has none" in skipped_baselines(config, "adamson")["additive"]
    assert "seed_compat" in skipped_baselines(config, "norman", "seed_compat")["additive"]
    assert DOUBLES_PRESETS == {name for name, p in PRESETS.items() if isinstance(p, DoublesPreset)}
    assert has_double_perturbations({"datasets": {"x": {"source": "gears", "gears_name": "norman"}}}, "x")
    assert has_double_perturbations({"datasets": {"x": {"source": "local", "path": "/no/such.h5ad"}}}, "x") is None


def test_local_file_with_doubles_is_recognised(norman, tmp_path):
    config = {"datasets": {"x": {"source": "local", "path": str(norman["root"] / "data.h5ad")}}}
    assert has_double_perturbations(config, "x") is True
    singles = ad.AnnData(np.ones((3, 2), dtype=np.float32),
                         obs=pd.DataFrame({"condition": pd.Categorical(["ctrl", "A+ctrl", "B+ctrl"])},
                                          index=["c0", "c1", "c2"]))
    write_h5ad(singles, tmp_path / "singles.h5ad")
    assert has_double_perturbations({"datasets": {"x": {"source": "local", "path": str(tmp_path / "singles.h5ad")}}},
                                    "x") is False


def test_the_shipped_doubles_config_validates_and_runs_the_additive_baseline(tmp_path):
    """config/doubles.yaml: valid, the norman stand-in with the paper's split; every baseline runs on it; switching the
    dataset to the real GEARS download keeps it valid."""
    import copy
    from pathlib import Path

    import yaml

    from lsftbench.pipeline.config import check_config
    from lsftbench.pipeline.preflight import validate_config

    repo = Path(__file__).resolve().parents[1]
    shipped = yaml.safe_load((repo / "config" / "doubles.yaml").read_text())
    for source in ("synthetic", "gears"):
        config = copy.deepcopy(shipped)
        config["datasets"]["norman"]["source"] = source
        validate_config(config, repo / "config" / "schema.yaml")
        check_config(config)
        assert config["split"]["method"] == "paper_doubles" and config["protocol"] == "default"
        assert baselines_for(config, "norman") == list(config["baselines"])
        assert config["baselines"]["additive"]["model"] == "additive"


def test_the_subgroup_notes_name_the_subgroups_the_common_test_set_lacks():
    """GEARS's split with the additive baseline: it predicts the combo_seen2 doubles alone, so they are the whole
    common test set; the notes name the other subgroups and the baseline that leaves them out."""
    from lsftbench.report.notes import missing_subgroups

    groups = {"A+B": "combo_seen2", "C+D": "combo_seen1", "E+ctrl": "unseen_single", "F+G": "combo_seen0"}
    rows = [(1, "lpm_selftrained", c, g) for c, g in groups.items()] + [(1, "additive", "A+B", "combo_seen2")]
    df = pd.DataFrame(rows, columns=["seed", "baseline", "condition", "subgroup"]).assign(top_pct=10.0)
    assert missing_subgroups(df) == (
        "Test subgroups of the split not in the common test set, so not in these rows: `combo_seen0` (not predicted "
        "by `additive`); `combo_seen1` (not predicted by `additive`); `unseen_single` (not predicted by `additive`). "
        "Run without those baselines for their rows.")
    assert missing_subgroups(df[df["baseline"] != "additive"]) == ""
