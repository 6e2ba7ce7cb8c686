"""Train/val/test splits of perturbation conditions.

Four sources of a split:

* :func:`gears_simulation_split` — the default protocol (SPEC §2): membership identical to GEARS 0.1.2
  ``PertData.prepare_split(split="simulation", seed=s)``; :func:`gears_simulation_subgroups` gives its test
  and val subgroups as GEARS names them (SPEC §10).
* :func:`paper_doubles_split` — the paper's split of a double-perturbation dataset (SPEC §10): every single
  trains, the doubles are halved; :func:`seen_subgroups` names its test doubles.
* :func:`seed_compat_split` — the plain 70/15/15 shuffle used by the seed's code (SPEC §9).
* :func:`read_split_json` — a user-supplied ``{"train": [...], "val": [...], "test": [...]}`` file.

All return ``{"train": [...], "val": [...], "test": [...]}`` with full condition names
(``GENE+ctrl``, ``A+B``); ``ctrl`` is always in ``train``. The subgroup functions return
``{"test": {subgroup: [...]}, "val": {subgroup: [...]}}`` with the subgroups of :data:`SUBGROUPS`;
:func:`subgroup_of` turns one set's into ``{condition: subgroup}``, what the split file stores under
``"subgroups"`` (:data:`SPLIT_METHODS` are the config's ``split.method``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import InputDataError, read_json
from .conditions import CTRL, condition_genes, is_double

__all__ = ["SETS", "SUBGROUPS", "SPLIT_METHODS", "EXPORT_README", "export_split", "split_conditions",
           "check_split_size", "gears_simulation_split", "gears_simulation_subgroups", "paper_doubles_split",
           "seen_subgroups", "subgroup_of", "split_subgroups", "seed_compat_split", "read_split_json", "split_summary"]

SETS = ("train", "val", "test")
#: GEARS 0.1.2's names of the held-out subgroups (``get_simulation_split``): doubles with 0, 1 or 2 seen genes,
#: singles of unseen genes.
SUBGROUPS = ("combo_seen0", "combo_seen1", "combo_seen2", "unseen_single")
#: The default protocol's splits (config ``split.method``): GEARS's simulation split (SPEC 2) and the paper's split
#: of a double-perturbation dataset (SPEC 10).
SPLIT_METHODS = ("gears_simulation", "paper_doubles")
Subgroups = dict[str, list[str]]


def split_conditions(
    path: str | os.PathLike[str], go_resources: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None
) -> tuple[list[str], list[str]]:
    """The conditions of a dataset's cells in file order, as the splits take them, and those dropped.

    With ``go_resources`` = (``gene2go_all.pkl``, ``essential_all_data_pert_genes.pkl``) the cells of
    conditions whose genes are not all in the GO perturbation graph are left out first (SPEC 2 step 1,
    :func:`lsftbench.data.download.go_filter_conditions`); the dropped conditions are returned.
    """
    from .h5ad import cell_conditions, open_perturb_data

    adata = open_perturb_data(path)
    try:
        conditions = list(cell_conditions(adata))
    finally:
        if adata.isbacked:
            adata.file.close()
    if go_resources is None:
        return conditions, []
    from .download import go_filter_conditions

    kept, dropped = go_filter_conditions(conditions, *go_resources)
    keep = set(kept)
    return [c for c in conditions if c in keep], dropped


# --------------------------------------------------------------------------------------------------
# GEARS simulation split
# --------------------------------------------------------------------------------------------------


def _unique_perts(conditions: Iterable[str]) -> list[str]:
    """Unique non-``ctrl`` conditions in order of first appearance."""
    return [c for c in dict.fromkeys(str(c) for c in conditions) if c != CTRL]


def _is_gears_single(pert: str) -> bool:
    # GEARS tests for the *substring* "ctrl" (not the "+"-split part); we mirror that.
    return CTRL in pert and pert != CTRL


def _gears_match_genes(pert: str) -> list[str]:
    """The genes GEARS matches a condition against (``parse_any_pert``)."""
    parts = pert.split("+")
    if _is_gears_single(pert):
        return [parts[1] if parts[0] == CTRL else parts[0]]
    return parts[:2]


def _perts_with_genes(genes: set[str], perts: Sequence[str], single: bool) -> list[str]:
    """Singles (or doubles) of ``perts`` that involve any of ``genes``, in ``perts`` order."""
    return [
        p
        for p in perts
        if _is_gears_single(p) == single and any(g in genes for g in _gears_match_genes(p))
    ]


def _simulation_step(
    perts: Sequence[str], gene_frac: float, combo_frac: float, seed: int
) -> tuple[list[str], list[str], Subgroups]:
    """One GEARS ``get_simulation_split`` pass: split ``perts`` into (train, held-out, held-out subgroups).

    A fraction ``gene_frac`` of the perturbed genes (sorted with ``np.unique``) is drawn as training
    genes. Singles of training genes train, singles of the other genes are held out. Doubles with
    exactly one training gene, or none, are held out; doubles with two are shuffled again (re-seeded)
    and a fraction ``combo_frac`` of them trains.

    Returns lists in GEARS's order: train = training singles then the drawn doubles (draw order);
    held-out = one-seen doubles, unpicked two-seen doubles (sorted), unseen singles, unseen doubles; the
    held-out ones also by subgroup (:data:`SUBGROUPS`), each list in that order.
    """
    # Legacy MT19937 stream: RandomState(s).choice == np.random.seed(s); np.random.choice, without
    # touching the global state.
    all_parts = [g for p in np.unique(np.asarray(perts, dtype=str)) for g in p.split("+")]
    genes = np.unique(np.asarray([g for g in all_parts if g != CTRL], dtype=str))
    train_genes_arr = np.random.RandomState(seed).choice(genes, int(len(genes) * gene_frac), replace=False)
    train_genes = {str(g) for g in train_genes_arr}
    other_genes = {str(g) for g in genes} - train_genes

    train = _perts_with_genes(train_genes, perts, single=True)
    doubles_seen = _perts_with_genes(train_genes, perts, single=False)
    seen1 = [p for p in doubles_seen if sum(t in train_genes for t in p.split("+")) == 1]
    seen2 = np.setdiff1d(np.asarray(doubles_seen, dtype=str), np.asarray(seen1, dtype=str))
    seen2_train = np.random.RandomState(seed).choice(seen2, int(len(seen2) * combo_frac), replace=False)
    seen2_test = [str(p) for p in np.setdiff1d(seen2, seen2_train)]
    train += [str(p) for p in seen2_train]

    unseen_single = _perts_with_genes(other_genes, perts, single=True)
    seen0 = [
        p
        for p in _perts_with_genes(other_genes, perts, single=False)
        if not any(t in train_genes for t in p.split("+"))
    ]
    held_out = seen1 + seen2_test + unseen_single + seen0
    if len(train) + len(held_out) != len(perts):
        raise ValueError(
            "conditions could not be assigned to the GEARS simulation split; "
            "expected names like 'G+ctrl' or 'A+B'"
        )
    subgroups = {"combo_seen0": seen0, "combo_seen1": seen1, "combo_seen2": seen2_test, "unseen_single": unseen_single}
    return train, held_out, subgroups


def _gears_simulation(
    conditions: Sequence[str], seed: int, train_gene_set_size: float, combo_seen2_train_frac: float
) -> tuple[dict[str, list[str]], dict[str, Subgroups]]:
    """The GEARS simulation split and its test and val subgroups (both passes of ``split_data``)."""
    perts = _unique_perts(conditions)
    if not perts:
        return {"train": [CTRL], "val": [], "test": []}, {name: _no_subgroups() for name in ("test", "val")}
    train, test, test_groups = _simulation_step(perts, train_gene_set_size, combo_seen2_train_frac, seed)
    train, val, val_groups = _simulation_step(train, 0.9, 0.9, seed)
    return {"train": train + [CTRL], "val": val, "test": test}, {"test": test_groups, "val": val_groups}


def _no_subgroups() -> Subgroups:
    return {name: [] for name in SUBGROUPS}


def gears_simulation_split(
    conditions: Sequence[str],
    seed: int = 1,
    train_gene_set_size: float = 0.75,
    combo_seen2_train_frac: float = 0.75,
) -> dict[str, list[str]]:
    """GEARS 0.1.2 ``split="simulation"`` split of a condition list.

    Parameters
    ----------
    conditions
        Condition names, e.g. the per-cell ``obs["condition"]`` column (repeats allowed). The unique
        non-``ctrl`` values, in order of first appearance, are split.
    seed
        GEARS split seed (``prepare_split(seed=...)``).
    train_gene_set_size, combo_seen2_train_frac
        GEARS fractions of training genes and of two-seen doubles kept for training.

    Returns
    -------
    dict
        ``{"train", "val", "test"}`` → condition names. Membership equals GEARS's; lists are in the
        order GEARS builds them (singles in first-appearance order, then doubles), with ``ctrl``
        appended to ``train`` as GEARS does (even when absent from ``conditions``).

    Notes
    -----
    The test set is drawn first; val is then carved from the first-pass train list by the same
    procedure with fractions 0.9/0.9 and the same seed.
    """
    return _gears_simulation(conditions, seed, train_gene_set_size, combo_seen2_train_frac)[0]


def gears_simulation_subgroups(
    conditions: Sequence[str],
    seed: int = 1,
    train_gene_set_size: float = 0.75,
    combo_seen2_train_frac: float = 0.75,
) -> dict[str, Subgroups]:
    """The test and val subgroups of :func:`gears_simulation_split` (same arguments), as GEARS 0.1.2's
    ``DataSplitter.split_data`` returns them (``test_subgroup``, ``val_subgroup``).

    Returns
    -------
    dict
        ``{"test": {...}, "val": {...}}``, each ``{subgroup: condition names}`` over :data:`SUBGROUPS`:
        ``combo_seen0`` / ``combo_seen1`` (doubles with no / one training gene, first-appearance order),
        ``combo_seen2`` (doubles of two training genes not drawn for training, sorted), ``unseen_single``
        (singles of genes not drawn for training). A set's subgroups partition it. "Training gene" is
        GEARS's: a gene drawn into the pass's training genes, whether or not it has a single perturbation.
    """
    return _gears_simulation(conditions, seed, train_gene_set_size, combo_seen2_train_frac)[1]


# --------------------------------------------------------------------------------------------------
# the paper's double-perturbation split
# --------------------------------------------------------------------------------------------------


def paper_doubles_split(conditions: Sequence[str], seed: int) -> dict[str, list[str]]:
    """The paper's split of a double-perturbation dataset (``prepare_perturbation_data.py``, SPEC 10).

    The sorted unique conditions; singles = those containing ``ctrl`` (``ctrl`` itself included) all train.
    The doubles (the rest, sorted) are halved with the legacy global stream (``np.random.seed(seed)``, then
    ``np.random.choice(doubles, len(doubles) // 2, replace=False)``, reproduced with a private
    :class:`numpy.random.RandomState` so the global state is left alone): the drawn half trains; of the
    other half (sorted) the first ``len // 2`` are test, the remainder val.

    Parameters
    ----------
    conditions
        Condition names, e.g. the per-cell ``obs["condition"]`` column (repeats allowed). The paper takes the
        sorted categories of the column; here the sorted distinct values, the same for a file whose
        categories all have cells.
    seed
        The paper's split seed.

    Returns
    -------
    dict
        ``{"train": sorted singles, then the drawn doubles in draw order, then ctrl; "val": [...]; "test":
        [...]}`` (val and test sorted).
    """
    conds = np.unique(np.asarray([str(c) for c in conditions], dtype=str))
    singles = [str(c) for c in conds if CTRL in c]
    doubles = np.setdiff1d(conds, np.asarray(singles, dtype=str))
    train_doubles = np.random.RandomState(seed).choice(doubles, len(doubles) // 2, replace=False)
    rest = [str(c) for c in np.setdiff1d(doubles, train_doubles)]
    n_test = len(rest) // 2
    return {
        "train": [c for c in singles if c != CTRL] + [str(c) for c in train_doubles] + [CTRL],
        "val": rest[n_test:],
        "test": rest[:n_test],
    }


def seen_subgroups(split: dict[str, Sequence[str]]) -> dict[str, Subgroups]:
    """The test and val conditions of a split by how many of their genes have a training single perturbation.

    GEARS's subgroup names (:data:`SUBGROUPS`) for any split, e.g. :func:`paper_doubles_split`, where every
    single trains: a double is ``combo_seen2`` when the single perturbations of both its genes are training
    conditions (what the additive prediction Δ_A + Δ_B needs), ``combo_seen1`` / ``combo_seen0`` when one /
    neither is (a gene never perturbed alone in the data); a held-out single is ``unseen_single``. Lists keep
    the split's order. (GEARS's own split counts a gene as seen when it was drawn as a training gene, with or
    without a single: :func:`gears_simulation_subgroups`.)
    """
    trained = {genes[0] for genes in map(condition_genes, split.get("train", [])) if len(genes) == 1}
    out: dict[str, Subgroups] = {}
    for name in ("test", "val"):
        groups = _no_subgroups()
        for condition in split.get(name, []):
            if is_double(condition):
                seen = sum(gene in trained for gene in condition_genes(condition))
                groups[f"combo_seen{seen}"].append(condition)
            elif condition != CTRL:
                groups["unseen_single"].append(condition)
        out[name] = groups
    return out


def subgroup_of(groups: Subgroups) -> dict[str, str]:
    """``{condition: subgroup}`` of one set's subgroups (``gears_simulation_subgroups(...)["test"]``), in
    :data:`SUBGROUPS` order and, within a subgroup, in its list's order."""
    return {condition: name for name in SUBGROUPS for condition in groups.get(name, [])}


def split_subgroups(
    conditions: Sequence[str],
    split: dict[str, Sequence[str]],
    *,
    method: str | None,
    seed: int,
    train_gene_set_size: float = 0.75,
) -> dict[str, str]:
    """The subgroup of every test condition of ``split`` (SPEC 10): GEARS's own subgroups
    (:func:`gears_simulation_subgroups`) when ``method`` is ``gears_simulation`` (``split`` is then that split of
    ``conditions``), else by the training singles of ``split`` (:func:`seen_subgroups`: the paper's split, a user's
    split file, the seed_compat shuffle: ``method`` ``None``)."""
    if method == "gears_simulation":
        groups = gears_simulation_subgroups(conditions, seed=seed, train_gene_set_size=train_gene_set_size)["test"]
    else:
        groups = seen_subgroups(split)["test"]
    out = subgroup_of(groups)
    if sorted(out) != sorted(split.get("test", [])):
        raise AssertionError("the test subgroups do not partition the test set")
    return {condition: out[condition] for condition in split.get("test", [])}


# --------------------------------------------------------------------------------------------------
# seed_compat split
# --------------------------------------------------------------------------------------------------


def seed_compat_split(conditions: Sequence[str], seed: int) -> dict[str, list[str]]:
    """The seed code's 70/15/15 shuffle (SPEC §9).

    ``numpy.random.default_rng(seed).permutation`` of the sorted unique non-``ctrl`` conditions;
    train = the first ``int(0.7 n)`` (in permutation order) followed by ``ctrl``, test = the next
    ``int(0.15 n)``, val = the rest.
    """
    perts = sorted(set(_unique_perts(conditions)))
    order = [str(p) for p in np.random.default_rng(seed).permutation(np.asarray(perts, dtype=object))]
    n = len(order)
    n_train, n_test = int(0.7 * n), int(0.15 * n)
    return {
        "train": order[:n_train] + [CTRL],
        "val": order[n_train + n_test :],
        "test": order[n_train : n_train + n_test],
    }


# --------------------------------------------------------------------------------------------------
# user split file
# --------------------------------------------------------------------------------------------------


def read_split_json(path: str | os.PathLike[str], conditions: Iterable[str]) -> dict[str, list[str]]:
    """Read and validate a user split file ``{"train": [...], "val": [...], "test": [...]}``.

    Parameters
    ----------
    path
        JSON file; ``train`` and ``test`` are required, ``val`` is optional (empty if absent).
    conditions
        Conditions present in the data (per-cell column or unique names).

    Returns
    -------
    dict
        The split, names de-duplicated within a set (first occurrence kept); ``ctrl`` appended to
        ``train`` if no set lists it.

    Raises
    ------
    InputDataError
        Unreadable file or not JSON; not an object; missing or unknown keys; a set that is not a list
        of strings; names not among ``conditions``; a condition in two sets; ``ctrl`` outside train;
        an empty test set or a train set without perturbations.
    """
    try:
        raw: Any = read_json(path)
    except (OSError, ValueError) as err:
        raise InputDataError(path, f"cannot read split file ({err})") from err
    if not isinstance(raw, dict):
        raise InputDataError(path, "split file must be a JSON object with keys 'train', 'test' (and 'val')")
    missing = [k for k in ("train", "test") if k not in raw]
    if missing:
        raise InputDataError(path, f"split file lacks required key(s) {missing}")
    extra = sorted(set(raw) - set(SETS))
    if extra:
        raise InputDataError(path, f"split file has unknown key(s) {extra}; allowed: {list(SETS)}")

    known = set(str(c) for c in conditions)
    split: dict[str, list[str]] = {}
    for name in SETS:
        names = raw.get(name, [])
        if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
            raise InputDataError(path, f"'{name}' must be a list of condition names (strings)")
        unknown = [x for x in dict.fromkeys(names) if x not in known]
        if unknown:
            raise InputDataError(path, f"'{name}' lists condition(s) not in the data: {_preview(unknown)}")
        split[name] = list(dict.fromkeys(names))

    for i, a in enumerate(SETS):
        for b in SETS[i + 1 :]:
            in_b = set(split[b])
            both = [x for x in split[a] if x in in_b]
            if both:
                raise InputDataError(path, f"condition(s) in both '{a}' and '{b}': {_preview(both)}")
    for name in ("val", "test"):
        if CTRL in split[name]:
            raise InputDataError(path, f"'{CTRL}' must be in 'train', not '{name}'")
    if CTRL not in split["train"]:
        split["train"].append(CTRL)
    if not split["test"]:
        raise InputDataError(path, "'test' is empty")
    if not any(x != CTRL for x in split["train"]):
        raise InputDataError(path, "'train' has no perturbation besides 'ctrl'")
    return split


def _preview(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(repr(x) for x in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def split_summary(split: dict[str, Sequence[str]]) -> dict[str, int]:
    """Number of conditions per set (``ctrl`` included in train) and in total."""
    counts = {name: len(split.get(name, [])) for name in SETS}
    counts["total"] = sum(counts.values())
    return counts


def check_split_size(split: dict[str, Sequence[str]], min_tests: int, *, where: str, train_gene_set_size: float = 0.75) -> None:
    """Stop at the split when a dataset is too small to benchmark on it.

    Parameters
    ----------
    split
        The split (``train``, ``val``, ``test`` condition lists).
    min_tests
        Fewest test perturbations a baseline must predict (``metrics.min_predictable_tests``).
    where
        The data file and split seed, named in the error.

    Raises
    ------
    ValueError
        With the number of perturbations, how many went to test and training, and roughly how many the
        dataset needs for a simulation split with ``train_gene_set_size``.
    """
    n_test = len(split.get("test", []))
    n_train = len([c for c in split.get("train", []) if c != "ctrl"])
    n_perts = n_test + n_train + len(split.get("val", []))
    if n_test >= min_tests and n_train >= 2:
        return
    test_share = max(1.0 - float(train_gene_set_size), 1e-3)
    needed = max(int(np.ceil(min_tests / test_share)) + 2, min_tests + 3)
    raise ValueError(
        f"{where}: the dataset is too small for a simulation split: its {n_perts} perturbations gave {n_test} test and "
        f"{n_train} training perturbations; the benchmark needs at least {min_tests} test perturbations "
        f"(metrics.min_predictable_tests) and 2 training perturbations, so about {needed} perturbations or more "
        f"(train_gene_set_size {train_gene_set_size:g} puts about {test_share:.0%} of the genes into test)"
    )


#: What :func:`export_split` writes, file by file (also the README of an exported split).
EXPORT_README = """\
# Split {seed} of {dataset}, exported for a model's own training code

- `split.json`: {{"train": [...], "val": [...], "test": [...]}}, GEARS condition names (`G+ctrl`, `A+B`; `ctrl` in train).
- `split.pkl`: the same dict pickled, for GEARS: `pert_data.prepare_split(split="custom", split_dict_path="split.pkl")`.
- `test_conditions.csv`: the test perturbations (`condition`, `target_gene` (empty for a double), `subgroup`: GEARS's
  test subgroup, `combo_seen0`/`combo_seen1`/`combo_seen2` for a double with 0/1/2 seen genes, `unseen_single`): predict
  these.
- `genes.csv`: the dataset's genes in its order (`position`, `gene_name` = the symbol predictions are matched by,
  `var_name` = the h5ad's var index, e.g. an Ensembl id).
- `control_mean.csv`: the mean log-normalised expression of the control cells per gene (`gene_name`, `control_mean`):
  a prediction of changes (`quantity: delta`) is relative to it.

Train only on the `train` (and `val`) conditions' cells: the test conditions are what the model is scored on.
"""


def export_split(
    split: str | os.PathLike[str],
    pseudobulk: str | os.PathLike[str],
    data: str | os.PathLike[str],
    outputs: Sequence[str | os.PathLike[str]],
    *,
    dataset: str,
    seed: int,
) -> list[str]:
    """Write one (dataset, split seed)'s split and what a model's own training code needs to use it.

    ``outputs`` are the files named ``split.json``, ``split.pkl``, ``test_conditions.csv``, ``genes.csv`` and
    ``control_mean.csv`` (:data:`EXPORT_README` says what each holds); a ``README.md`` is written beside them.
    Returns the paths written.
    """
    import pickle

    import pandas as pd

    from ..io import atomic_path, write_csv, write_json, write_text
    from .conditions import single_gene
    from .h5ad import gene_symbols, open_perturb_data
    from .mean_expression import read_mean_expression

    parts = read_json(split)
    pb = read_mean_expression(pseudobulk)
    adata = open_perturb_data(data)
    try:
        symbols, ids = [str(g) for g in gene_symbols(adata, data)], [str(g) for g in adata.var_names]
    finally:
        if adata.isbacked:
            adata.file.close()
    if symbols != list(pb.var_names):
        raise InputDataError(pseudobulk, f"its genes differ from those of {data}; rerun the rule pseudobulk")
    paths = {Path(p).name: Path(p) for p in outputs}
    write_json({name: list(parts.get(name, [])) for name in SETS}, paths["split.json"])
    with atomic_path(paths["split.pkl"]) as tmp:
        tmp.write_bytes(pickle.dumps({name: list(parts.get(name, [])) for name in SETS}, protocol=4))
    tests = list(parts["test"])
    groups = parts.get("subgroups") or subgroup_of(seen_subgroups(parts)["test"])  # a split file of an older run
    write_csv(pd.DataFrame({"condition": tests, "target_gene": [single_gene(c) or "" for c in tests],
                            "subgroup": [groups.get(c, "") for c in tests]}), paths["test_conditions.csv"])
    write_csv(pd.DataFrame({"position": range(len(symbols)), "gene_name": symbols, "var_name": ids}), paths["genes.csv"])
    ctrl = np.asarray(pb.X, dtype=np.float64)[pb.obs_names.get_loc(CTRL)]
    write_csv(pd.DataFrame({"gene_name": symbols, "control_mean": ctrl}), paths["control_mean.csv"])
    readme = paths["split.json"].parent / "README.md"
    write_text(EXPORT_README.format(dataset=dataset, seed=seed), readme)
    return [*(str(p) for p in paths.values()), str(readme)]
