"""Which test perturbations a table's means are over (SPEC 7.1): the common test set, and the pairs a metric is
defined for.

* :func:`common_test_set` — per split seed, the test perturbations every baseline (and every model of one's own)
  predicts: the default of every comparison table;
* :func:`restrict_to_test_set` — a per-perturbation frame's rows in the common or per-baseline test set;
* :func:`defined_pairs` — the (seed, perturbation) pairs where every compared method has a metric defined: a
  perturbation whose metric is undefined for one method is left out of every mean it is compared with;
* :func:`not_predictable_list` — per seed, the test perturbations some baseline could not predict, and why.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["common_test_set", "restrict_to_test_set", "defined_pairs", "not_predictable_list"]




def common_test_set(df: pd.DataFrame) -> pd.DataFrame:
    """Per seed, the conditions that every (baseline, K) in ``df`` has rows for.

    The baselines and K are those of the whole frame, so a baseline with no rows in some seed leaves
    that seed's common set empty. A frame whose rows carry ``in_common_test_set`` (set where the test
    set was restricted further, e.g. to the perturbations every model of one's own predicts) keeps
    only those. Returns columns ``seed, condition`` sorted by seed then condition.
    """
    if "in_common_test_set" in df.columns:
        df = df[df["in_common_test_set"].astype(bool)]
    configs = df[["baseline", "top_pct"]].drop_duplicates()
    n_configs = len(configs)
    have = df[["seed", "baseline", "top_pct", "condition"]].drop_duplicates()
    counts = have.groupby(["seed", "condition"], sort=True).size()
    common = counts[counts == n_configs].reset_index()[["seed", "condition"]]
    return common.sort_values(["seed", "condition"], kind="stable").reset_index(drop=True)


def restrict_to_test_set(df: pd.DataFrame, test_set: str = "common") -> pd.DataFrame:
    """Rows of ``df`` in the chosen test set: ``common`` (see :func:`common_test_set`) or ``per_baseline``.

    ``per_baseline`` keeps every row (each baseline over the perturbations it can predict). For
    ``common``, a seed of ``df`` whose common set is empty is an error, not an empty table.
    """
    if test_set == "per_baseline":
        return df
    if test_set != "common":
        raise ValueError(f"test_set must be 'common' or 'per_baseline', got {test_set!r}")
    common = common_test_set(df)
    empty = sorted(set(df["seed"]) - set(common["seed"]))
    if empty:
        raise ValueError(
            f"no test perturbation is predicted by every baseline in split seed(s) {empty}; "
            "compare per baseline (test_set='per_baseline') or drop the baseline that covers none"
        )
    return df.merge(common, on=["seed", "condition"], how="inner")

def defined_pairs(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``seed, condition`` pairs where every method of ``frame`` that has ``metric`` at all has it defined.

    ``frame`` holds one row per (seed, method, condition) with a column per metric (the comparison frame of
    :mod:`lsftbench.report.aggregate`). A method whose metric is undefined everywhere (e.g. the ``no change``
    null's Pearson r) does not compete and leaves no pair out; a competing method without a row for a pair leaves it
    out as an undefined value does. Sorted by seed then condition.
    """
    if metric not in frame.columns:
        return pd.DataFrame({"seed": pd.Series(dtype="int64"), "condition": pd.Series(dtype=object)})
    defined = frame[metric].notna()
    has = defined.groupby(frame["method"]).any()
    rows = frame[frame["method"].isin(has[has].index) & defined]
    methods = rows.groupby("seed")["method"].nunique()  # the competing methods of each seed
    per_pair = rows.groupby(["seed", "condition"], sort=True)["method"].nunique()
    ok = per_pair == methods.reindex(per_pair.index.get_level_values("seed")).to_numpy()
    return per_pair[ok].reset_index()[["seed", "condition"]]


def not_predictable_list(unpredictable: pd.DataFrame, df: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per seed, every test perturbation some baseline could not predict, and why.

    Parameters
    ----------
    unpredictable
        Columns ``seed, baseline, condition, reason``: one row per baseline and test perturbation it
        cannot predict (e.g. its gene has no embedding).
    df
        Optional per-perturbation rows: a condition that some baseline lacks rows for although
        ``unpredictable`` gives no reason is listed too, with the reason ``no result rows``.

    Returns
    -------
    DataFrame
        Columns ``seed, condition, baselines, reasons`` (one row per seed and condition; ``reasons``
        reads ``baseline: reason; ...``), sorted by seed and condition.
    """
    parts = [unpredictable[["seed", "baseline", "condition", "reason"]]]
    if df is not None and len(df):
        configs = df[["baseline"]].drop_duplicates()
        every = df[["seed", "condition"]].drop_duplicates().merge(configs, how="cross")
        have = df[["seed", "baseline", "condition"]].drop_duplicates()
        lacking = every.merge(have, how="left", indicator=True).query("_merge == 'left_only'").drop(columns="_merge")
        lacking = lacking.merge(parts[0][["seed", "baseline", "condition"]], how="left", indicator=True)
        lacking = lacking.query("_merge == 'left_only'").drop(columns="_merge").assign(reason="no result rows")
        parts.append(lacking)
    rows = pd.concat(parts, ignore_index=True).drop_duplicates(["seed", "baseline", "condition"])
    rows = rows.sort_values(["seed", "condition", "baseline"], kind="stable")
    out = rows.groupby(["seed", "condition"], sort=True).agg(
        baselines=("baseline", lambda s: ", ".join(s)),
        reasons=("reason", lambda s: "; ".join(f"{b}: {r}" for b, r in zip(rows.loc[s.index, "baseline"], s))),
    )
    return out.reset_index()
