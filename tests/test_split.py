"""Splits: parity with GEARS 0.1.2's own code, the seed_compat shuffle, and user split files."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from gears_reference import gears_modules

from lsftbench.data.h5ad import InputDataError
from lsftbench.data.split import (
    SUBGROUPS,
    gears_simulation_split,
    gears_simulation_subgroups,
    paper_doubles_split,
    read_split_json,
    seed_compat_split,
    seen_subgroups,
    split_summary,
)

SEEDS = [1, 2, 3, 4, 5]


# --------------------------------------------------------------------------------------------------
# GEARS 0.1.2 reference, imported without gears/__init__.py (which needs torch_geometric)
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gears_data_utils():
    """The installed ``gears/data_utils.py`` (:func:`gears_reference.gears_modules`)."""
    with gears_modules("data_utils") as modules:
        yield modules["data_utils"]


def _gears_split(du, conditions: list[str], seed: int, categorical: bool = False):
    """GEARS's ``split_data``: the adata with its ``split`` column and the ``{test,val}_subgroup`` dict."""
    obs = pd.DataFrame({"condition": conditions}, index=[f"c{i}" for i in range(len(conditions))])
    if categorical:
        obs["condition"] = obs["condition"].astype("category")
    adata = ad.AnnData(X=np.zeros((len(conditions), 1), dtype=np.float32), obs=obs)
    return du.DataSplitter(adata, split_type="simulation").split_data(
        train_gene_set_size=0.75, combo_seen2_train_frac=0.75, seed=seed
    )


def _gears_membership(du, conditions: list[str], seed: int, categorical: bool = False) -> dict[str, set[str]]:
    adata, _ = _gears_split(du, conditions, seed, categorical)
    per_cond = adata.obs[["condition", "split"]].astype(str).drop_duplicates()
    assert per_cond["condition"].is_unique and not per_cond["split"].isin(["nan"]).any()
    return {s: set(per_cond.loc[per_cond["split"] == s, "condition"]) for s in ("train", "val", "test")}


def _singles(genes) -> list[str]:
    return [f"{g}+ctrl" for g in genes]


def _doubles(genes, n: int, rng: np.random.Generator) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        a, b = rng.choice(len(genes), 2, replace=False)
        name = f"{genes[a]}+{genes[b]}"
        if name not in out:
            out.append(name)
    return out


def _condition_lists() -> dict[str, tuple[list[str], bool]]:
    """name -> (per-cell condition column, categorical?)."""
    rng = np.random.default_rng(7)
    g = [f"GENE{i}" for i in range(600)]
    odd = ["A1BG", "a1bg", "C1orf43", "c1orf43", "HLA-A", "HLA-B", "MT-ND1", "ZNF10", "ZNF9", "ZNF9B",
           "_X", "x.1", "X.1", "Gm12345", "1810009J06Rik", "AC004.1", "zzz", "ZZZ", "B2M", "b2m"]
    norman = g[:100]
    norman_list = (["ctrl"] + _singles(norman[:90]) + _doubles(norman, 130, rng)
                   + _doubles(g[100:120], 10, rng))  # some doubles of genes without a single
    shuffled = list(rng.permutation(norman_list))
    per_cell = [c for c in shuffled for _ in range(int(rng.integers(1, 4)))]
    some = _doubles(g[:28], 40, np.random.default_rng(8))  # its own stream: the other lists stay as they were
    both_orders = some + ["+".join(reversed(d.split("+"))) for d in some[::3]]
    return {
        "singles_1": (["ctrl", "GENE5+ctrl"], False),
        "singles_2": (["ctrl"] + _singles(["B", "A"]), False),
        "singles_3": (["ctrl"] + _singles(["C", "A", "B"]), False),
        "singles_20": (["ctrl"] + _singles(g[:20]), False),
        "singles_87_shuffled": (["ctrl"] + list(rng.permutation(_singles(g[:87]))), True),
        "singles_500_per_cell": ([c for c in ["ctrl"] + list(rng.permutation(_singles(g[:500])))
                                  for _ in range(2)], True),
        "odd_names": (list(rng.permutation(["ctrl"] + _singles(odd) + ["ctrl+MT-ND1x", "ctrl+zz9"])), False),
        "odd_names_doubles_no_ctrl": (_singles(odd[:12]) + _doubles(odd, 25, rng), False),
        "norman_like": (norman_list, False),
        "norman_like_shuffled_per_cell": (per_cell, True),
        "only_doubles": (["ctrl"] + _doubles(g[:30], 60, rng), False),
        # GEARS reads "A+B" and "B+A" as two conditions; so does the split (the data readers merge them)
        "doubles_both_orders": (["ctrl"] + _singles(g[:24]) + both_orders, False),
    }


CONDITION_LISTS = _condition_lists()


@pytest.mark.parametrize("name", list(CONDITION_LISTS))
def test_gears_simulation_split_matches_gears(gears_data_utils, name):
    conditions, categorical = CONDITION_LISTS[name]
    for seed in SEEDS:
        ref = _gears_membership(gears_data_utils, conditions, seed, categorical)
        column = pd.Series(conditions, dtype="category" if categorical else object)
        ours = gears_simulation_split(column, seed=seed)
        if "ctrl" not in conditions:
            assert ours["train"][-1] == "ctrl"
            ours["train"] = ours["train"][:-1]
        got = {k: set(v) for k, v in ours.items()}
        assert got == ref, f"{name}, seed {seed}"
        assert sum(len(v) for v in ours.values()) == len(set(conditions)), "duplicates in a set"


def test_gears_simulation_split_list_order(gears_data_utils):
    """Lists come out in the order GEARS's own get_simulation_split builds them."""
    conditions = CONDITION_LISTS["norman_like"][0]
    perts = [c for c in dict.fromkeys(conditions) if c != "ctrl"]
    ds = gears_data_utils.DataSplitter(None, split_type="simulation")
    for seed in SEEDS:
        train, test, _ = ds.get_simulation_split(perts, 0.75, 0.75, seed)
        train, val, _ = ds.get_simulation_split(train, 0.9, 0.9, seed)
        ours = gears_simulation_split(conditions, seed=seed)
        assert ours == {"train": [str(x) for x in train] + ["ctrl"], "val": [str(x) for x in val],
                        "test": [str(x) for x in test]}


DOUBLE_LISTS = [name for name, (conds, _) in CONDITION_LISTS.items() if any("ctrl" not in c for c in conds)]


@pytest.mark.parametrize("name", DOUBLE_LISTS)
def test_gears_simulation_subgroups_match_gears(gears_data_utils, name):
    """The test and val subgroups equal those GEARS's split_data returns, list by list and in its order."""
    conditions, categorical = CONDITION_LISTS[name]
    assert len(DOUBLE_LISTS) == 5
    for seed in SEEDS:
        _, ref = _gears_split(gears_data_utils, conditions, seed, categorical)
        column = pd.Series(conditions, dtype="category" if categorical else object)
        ours = gears_simulation_subgroups(column, seed=seed)
        for part in ("test", "val"):
            expected = {group: [str(x) for x in members] for group, members in ref[f"{part}_subgroup"].items()}
            assert ours[part] == expected, f"{name}, seed {seed}, {part}"
        split = gears_simulation_split(column, seed=seed)
        for part in ("test", "val"):  # a set's subgroups partition it
            assert sorted(c for group in SUBGROUPS for c in ours[part][group]) == sorted(split[part])
    if name == "norman_like":  # every subgroup occurs
        assert all(ours["test"][group] for group in SUBGROUPS)


def test_gears_simulation_subgroups_of_singles_and_of_nothing():
    conditions = ["ctrl"] + _singles(f"G{i}" for i in range(40))
    groups = gears_simulation_subgroups(conditions, seed=3)
    split = gears_simulation_split(conditions, seed=3)
    assert groups["test"] == {"combo_seen0": [], "combo_seen1": [], "combo_seen2": [], "unseen_single": split["test"]}
    assert groups["val"]["unseen_single"] == split["val"] and len(split["test"]) == 10
    nothing = {part: dict.fromkeys(SUBGROUPS, []) for part in ("test", "val")}
    assert gears_simulation_subgroups(["ctrl"], seed=1) == nothing


# --------------------------------------------------------------------------------------------------
# the paper's double-perturbation split
# --------------------------------------------------------------------------------------------------


def _paper_reference(conditions: list[str], seed: int) -> dict[str, list[str]]:
    """SPEC 10's transcription of the paper's prepare_perturbation_data.py, with the global legacy RNG."""
    conds = np.asarray(pd.Categorical(conditions).categories)  # sorted categories
    singles = [c for c in conds if "ctrl" in c]
    np.random.seed(seed)
    doubles = np.setdiff1d(conds, singles)
    train_doubles = np.random.choice(doubles, len(doubles) // 2, replace=False)
    rest = np.setdiff1d(doubles, train_doubles)
    return {"train": singles + list(train_doubles), "val": list(rest[len(rest) // 2 :]),
            "test": list(rest[: len(rest) // 2])}


@pytest.mark.parametrize("name", DOUBLE_LISTS)
def test_paper_doubles_split_matches_the_paper(name):
    conditions = [str(c) for c in CONDITION_LISTS[name][0]]
    state = np.random.get_state()
    try:
        for seed in [1, 2, 3, 42]:
            ref = _paper_reference(conditions, seed)
            ours = paper_doubles_split(conditions, seed)
            assert ours["train"] == [str(c) for c in ref["train"] if c != "ctrl"] + ["ctrl"]
            assert ours["test"] == [str(c) for c in ref["test"]] and ours["val"] == [str(c) for c in ref["val"]]
            assert len(ours["test"]) == (len(ours["test"]) + len(ours["val"])) // 2 > 0
            assert sum(map(len, ours.values())) == len(set(conditions) | {"ctrl"})
    finally:
        np.random.set_state(state)


def test_paper_doubles_split_hand_computed_and_global_rng_untouched():
    conditions = ["ctrl", "A+ctrl", "B+ctrl", "ctrl", "C+ctrl", "B+A", "A+C", "B+C", "C+Z", "Y+Z", "B+A"]
    # doubles sorted: A+C B+A B+C C+Z Y+Z; choice(5, 2, replace=False) = permutation(5)[:2] = indices 2, 0
    # (B+C, A+C) train; the rest B+A C+Z Y+Z: the first 3 // 2 = 1 test, the others val
    assert np.random.RandomState(0).permutation(5).tolist()[:2] == [2, 0]
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    split = paper_doubles_split(conditions, seed=0)
    assert np.random.random() == expected_next
    assert split == {"train": ["A+ctrl", "B+ctrl", "C+ctrl", "B+C", "A+C", "ctrl"], "test": ["B+A"],
                     "val": ["C+Z", "Y+Z"]}
    # every single trains, so a held-out double is combo_seen2 when both its genes have a single, else 1 or 0
    groups = seen_subgroups(split)
    assert groups["test"] == {"combo_seen0": [], "combo_seen1": [], "combo_seen2": ["B+A"], "unseen_single": []}
    assert groups["val"] == {"combo_seen0": ["Y+Z"], "combo_seen1": ["C+Z"], "combo_seen2": [], "unseen_single": []}
    assert paper_doubles_split(["ctrl", "A+ctrl"], seed=1) == {"train": ["A+ctrl", "ctrl"], "val": [], "test": []}


def test_seen_subgroups_of_a_singles_split():
    split = {"train": ["A+ctrl", "ctrl"], "val": ["ctrl+B"], "test": ["C+ctrl", "A+C", "A+D"]}
    groups = seen_subgroups(split)
    assert groups["test"] == {"combo_seen0": [], "combo_seen1": ["A+C", "A+D"], "combo_seen2": [],
                              "unseen_single": ["C+ctrl"]}
    assert groups["val"] == {"combo_seen0": [], "combo_seen1": [], "combo_seen2": [], "unseen_single": ["ctrl+B"]}


def test_gears_simulation_split_does_not_touch_global_rng():
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    gears_simulation_split(_singles("ABCDEFGH"), seed=4)
    assert np.random.random() == expected


def test_gears_simulation_split_sizes_and_ctrl_only():
    split = gears_simulation_split(["ctrl"] + _singles(f"G{i}" for i in range(100)), seed=1)
    # 75 training genes -> 25 test; int(75 * 0.9) = 67 train, 8 val
    assert split_summary(split) == {"train": 68, "val": 8, "test": 25, "total": 101}
    assert gears_simulation_split(["ctrl", "ctrl"], seed=1) == {"train": ["ctrl"], "val": [], "test": []}


# --------------------------------------------------------------------------------------------------
# seed_compat
# --------------------------------------------------------------------------------------------------


def test_seed_compat_split_exact():
    conds = ["ctrl", "D+ctrl", "B+ctrl", "A+ctrl", "ctrl", "C+ctrl", "F+ctrl", "E+ctrl", "A+B",
             "H+ctrl", "G+ctrl", "J+ctrl", "I+ctrl"]
    ordered = sorted({c for c in conds if c != "ctrl"})  # 11 conditions
    perm = np.random.default_rng(0).permutation(11)
    expected_order = [ordered[i] for i in perm]
    split = seed_compat_split(conds, seed=0)
    # n = 11: int(7.7) = 7 train, int(1.65) = 1 test, 3 val
    assert split == {"train": expected_order[:7] + ["ctrl"], "test": expected_order[7:8],
                     "val": expected_order[8:]}
    assert split_summary(split) == {"train": 8, "val": 3, "test": 1, "total": 12}


def test_seed_compat_split_hand_computed():
    # pinned value of the PCG64 stream (numpy's Generator stream is stable across versions)
    assert np.random.default_rng(0).permutation(5).tolist() == [2, 4, 3, 0, 1]
    split = seed_compat_split(["E+ctrl", "ctrl", "A+ctrl", "C+ctrl", "B+ctrl", "D+ctrl"], seed=0)
    # sorted: A B C D E -> permuted: C E D A B; int(3.5) = 3 train, int(0.75) = 0 test, 2 val
    assert split == {"train": ["C+ctrl", "E+ctrl", "D+ctrl", "ctrl"], "test": [], "val": ["A+ctrl", "B+ctrl"]}


# --------------------------------------------------------------------------------------------------
# user split JSON
# --------------------------------------------------------------------------------------------------

DATA_CONDS = ["ctrl", "A+ctrl", "B+ctrl", "C+ctrl", "D+ctrl", "A+B"]


def _write(tmp_path: Path, obj, name: str = "split.json") -> Path:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def test_read_split_json_round_trip(tmp_path):
    split = {"train": ["ctrl", "A+ctrl", "B+ctrl"], "val": ["C+ctrl"], "test": ["D+ctrl", "A+B"]}
    assert read_split_json(_write(tmp_path, split), DATA_CONDS) == split
    # val optional, ctrl added to train, per-cell condition column accepted
    got = read_split_json(_write(tmp_path, {"train": ["A+ctrl"], "test": ["B+ctrl"]}), DATA_CONDS * 3)
    assert got == {"train": ["A+ctrl", "ctrl"], "val": [], "test": ["B+ctrl"]}
    # a GEARS split round-trips
    gears = gears_simulation_split(CONDITION_LISTS["norman_like"][0], seed=2)
    path = _write(tmp_path, gears, "gears.json")
    assert read_split_json(path, CONDITION_LISTS["norman_like"][0]) == gears


@pytest.mark.parametrize(
    "content, fragment",
    [
        ({"train": ["A+ctrl", "Z+ctrl"], "test": ["B+ctrl"]}, "'Z+ctrl'"),
        ({"train": ["A+ctrl"], "val": ["B+ctrl"], "test": ["B+ctrl", "C+ctrl"]}, "both 'val' and 'test'"),
        ({"train": ["A+ctrl", "D+ctrl"], "test": ["D+ctrl"]}, "both 'train' and 'test'"),
        ({"train": ["A+ctrl"]}, "lacks required key"),
        ({"test": ["A+ctrl"]}, "lacks required key"),
        ({"train": ["A+ctrl"], "test": ["B+ctrl"], "validation": ["C+ctrl"]}, "unknown key"),
        ({"train": "A+ctrl", "test": ["B+ctrl"]}, "list of condition names"),
        ({"train": ["A+ctrl"], "test": ["ctrl", "B+ctrl"]}, "must be in 'train'"),
        ({"train": ["A+ctrl"], "test": []}, "'test' is empty"),
        (["A+ctrl"], "JSON object"),
        ("{not json", "cannot read"),
    ],
)
def test_read_split_json_errors(tmp_path, content, fragment):
    path = _write(tmp_path, content)
    with pytest.raises(InputDataError) as err:
        read_split_json(path, DATA_CONDS)
    assert str(path) in str(err.value) and fragment in str(err.value)


def test_read_split_json_missing_file(tmp_path):
    with pytest.raises(InputDataError, match="missing.json"):
        read_split_json(tmp_path / "missing.json", DATA_CONDS)
