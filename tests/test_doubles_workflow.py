"""The doubles benchmark end to end (issue 28, SPEC 10): a user's Norman predictions land on the same tables.

One small run of the norman stand-in under GEARS's simulation split (its four test subgroups), with two models of
one's own holding the same numbers: ``ab`` names every test condition as the split does (``A+B``, ``A+ctrl``),
``ba`` with every label's genes swapped (``B+A``, ``ctrl+A``). Known answers: the two models' rows are equal in every
table; every subgroup's progress bar and leaderboard are the means over that subgroup's perturbations of the
methods' per-perturbation scores (recomputed here from ``per_method.parquet`` with pandas alone), with WAP the best
null method there.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from workflow_utils import copy_workflow, snakemake, write_config

pytestmark = pytest.mark.workflow

SEED = 1
MODELS = {
    "ab": {"path": "predictions/ab_{dataset}_seed{seed}.csv", "quantity": "delta"},
    "ba": {"path": "predictions/ba_{dataset}_seed{seed}.csv", "quantity": "delta"},
}
CONFIG = {
    "datasets": {"norman": {"source": "synthetic"}},
    "split": {"seeds": [SEED], "method": "gears_simulation"},
    "top_pcts": [10],
    "statistics": {"n_resamples": 200},
    "progress_bar": {"replicates": 4},
    "metrics": {"min_predictable_tests": 3},
    "baselines": {  # no `additive`: it predicts combo_seen2 alone, which would be the whole common test set
        "lpm_selftrained": {"gene": {"type": "training_pca"}, "pert": {"type": "training_pca"}},
        "mean_response": {"model": "mean", "pert": {"type": "training_pca"}},
    },
}


def _swapped(label: str) -> str:
    return "+".join(label.split("+")[::-1])


@pytest.fixture(scope="module")
def doubles_run(tmp_path_factory):
    root = copy_workflow(tmp_path_factory.mktemp("doubles_run"))
    write_config(root, CONFIG)
    snakemake(root, "splits", "--cores", "2", root=root)
    split_dir = root / "results" / "splits" / "norman" / f"seed{SEED}"
    tests = pd.read_csv(split_dir / "test_conditions.csv")
    data = ad.read_h5ad(root / "results" / "data" / "norman" / "perturb_processed.h5ad")
    x = np.asarray(data.X.todense() if hasattr(data.X, "todense") else data.X, dtype=np.float64)
    cond = data.obs["condition"].astype(str).to_numpy()
    ctrl = x[cond == "ctrl"].mean(axis=0)
    rng = np.random.default_rng(3)
    delta = np.stack([x[cond == c].mean(axis=0) - ctrl for c in tests["condition"]])
    delta += rng.normal(scale=0.5 * delta.std(), size=delta.shape)  # an imperfect model
    (root / "predictions").mkdir()
    for name, labels in (("ab", list(tests["condition"])), ("ba", [_swapped(c) for c in tests["condition"]])):
        frame = pd.DataFrame(delta, index=labels, columns=list(data.var["gene_name"]))
        frame.rename_axis("condition").reset_index().to_csv(root / "predictions" / f"{name}_norman_seed{SEED}.csv",
                                                             index=False)
    write_config(root, {**CONFIG, "models": MODELS})
    snakemake(root, "--cores", "2", root=root)
    return {"root": root, "tables": root / "results" / "tables" / "default" / "norman", "tests": tests}


def test_the_split_has_every_gears_subgroup(doubles_run):
    groups = set(doubles_run["tests"]["subgroup"])
    assert {"combo_seen0", "combo_seen1", "combo_seen2", "unseen_single"} <= groups


@pytest.mark.parametrize("table", ["leaderboard", "leaderboard_by_subgroup", "progress_bar", "progress_bar_by_subgroup",
                                   "interactions"])
def test_b_plus_a_labels_give_the_same_rows_in_every_table(doubles_run, table):
    for where in (doubles_run["tables"], doubles_run["tables"] / f"seed{SEED}"):
        frame = pd.read_csv(where / f"{table}.csv")
        column = "Baseline" if table.startswith("progress_bar") else "Method"
        ab = frame[frame[column] == "ab"].drop(columns=["Method", "Baseline", "Position"], errors="ignore").reset_index(drop=True)
        ba = frame[frame[column] == "ba"].drop(columns=["Method", "Baseline", "Position"], errors="ignore").reset_index(drop=True)
        assert len(ab) and len(ab) == len(ba)
        pd.testing.assert_frame_equal(ab, ba)


def test_every_subgroup_has_the_models_and_its_own_means(doubles_run):
    tables = doubles_run["tables"]
    frame = pd.read_parquet(tables / "per_method.parquet")
    frame = frame[frame["seed"] == SEED]
    groups = doubles_run["tests"].set_index("condition")["subgroup"]
    frame = frame.assign(subgroup=frame["condition"].map(groups))
    board = pd.read_csv(tables / f"seed{SEED}" / "leaderboard_by_subgroup.csv")
    bar = pd.read_csv(tables / f"seed{SEED}" / "progress_bar_by_subgroup.csv")
    assert set(board["Subgroup"]) == set(frame["subgroup"])
    for group in sorted(set(frame["subgroup"])):
        part = frame[frame["subgroup"] == group]
        # Pearson r: every method but `no change` (undefined everywhere) has it on every perturbation
        means = part[part["method"] != "no change"].groupby("method")["pearson_r"].mean()
        rows = board[board["Subgroup"] == group].set_index("Method")
        assert {"ab", "ba", "lpm_selftrained · global fit", "lpm_selftrained · LSFT top 10%"} <= set(rows.index)
        np.testing.assert_allclose(rows.loc[means.index, "Pearson r"].to_numpy(), means.to_numpy(), rtol=1e-12)
        nulls = means[["train mean", "random perturbation embedding"]]
        r = bar[(bar["Subgroup"] == group) & (bar["Metric"] == "Pearson r")].set_index("Baseline")
        assert r["WAP"].iloc[0] == pytest.approx(nulls.max(), rel=1e-12)
        assert r["WAP method"].iloc[0] == nulls.idxmax()
        assert r["Perturbations"].iloc[0] == part["condition"].nunique()
        bap = r["BAP"].iloc[0]
        np.testing.assert_allclose(r.loc["ab", "% of gap closed"],
                                   100 * (means["ab"] - nulls.max()) / (bap - nulls.max()), rtol=1e-10)


def test_the_subgroup_blocks_are_the_subgroups_of_the_whole_tables(doubles_run):
    """No `all` block (the whole test set's rows are progress_bar and leaderboard); the subgroups' perturbations add up
    to the whole table's, and every method of the leaderboard has a row in each subgroup."""
    for where in (doubles_run["tables"], doubles_run["tables"] / f"seed{SEED}"):
        whole = pd.read_csv(where / "leaderboard.csv")
        stacked = pd.read_csv(where / "leaderboard_by_subgroup.csv")
        assert "all" not in set(stacked["Subgroup"])
        def count(text: str) -> int:  # "59 (seed 1)"
            return int(str(text).split()[0])

        sizes = stacked.groupby("Subgroup")["Perturbations"].first().map(count)
        assert sizes.sum() == count(whole["Perturbations"].iloc[0]) and (sizes > 0).all()
        for _, block in stacked.groupby("Subgroup"):
            assert set(block["Method"]) == set(whole["Method"])
        assert not {"Spread", "Mode Collapse"} & set(stacked.columns)
        bar = pd.read_csv(where / "progress_bar_by_subgroup.csv")
        assert set(bar["Subgroup"]) == set(stacked["Subgroup"])
        assert list(bar.columns) == ["Subgroup", *pd.read_csv(where / "progress_bar.csv").columns]


def test_the_subgroup_tables_name_their_subgroups(doubles_run):
    md = (doubles_run["tables"] / "leaderboard_by_subgroup.md").read_text()
    assert "`combo_seen0`:" in md and "`unseen_single`:" in md and "| Subgroup |" in md
    lsft = pd.read_csv(doubles_run["tables"] / "lsft_performance_by_subgroup.csv")
    assert {"all", "combo_seen0", "combo_seen1", "combo_seen2", "unseen_single"} <= set(lsft["Subgroup"])
