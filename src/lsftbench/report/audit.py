"""Leakage audit: the published (``seed_compat``, leaking) numbers beside the clean default protocol.

Input is two performance tables of one dataset (:func:`lsftbench.report.tables.performance_table`, typically
pooled over seeds): one under the default protocol (SPEC sections 2-6), one under ``seed_compat``
(SPEC 9.1), which reproduces the LSFT note's tables and uses each test perturbation's observed
expression for its own prediction. The difference column shows how much of a published number the
leak (and the other protocol differences, SPEC 9) accounts for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from .markdown import GLOBAL_HEADER, to_markdown
from .notes import protocol_label, run_note

__all__ = ["AUDIT_VALUES", "PUBLISHED", "CLEAN", "audit_table", "audit_markdown"]

AUDIT_VALUES = (
    "Local Pearson r",
    "Baseline Pearson r",
    "Improvement (r)",
    "kNN Pearson r",
    "Local L2",
    "Baseline L2",
    "Improvement (L2)",
)
PUBLISHED = "published, LEAKS TEST DATA"
CLEAN = "clean"
_KEYS = ("Dataset", "Baseline", "Top %")


def audit_table(default_perf: pd.DataFrame, seed_compat_perf: pd.DataFrame) -> pd.DataFrame:
    """Per (Baseline, Top %): the published number, the clean number and their difference.

    Parameters
    ----------
    default_perf
        Performance table under the clean default protocol.
    seed_compat_perf
        Performance table under the published ``seed_compat`` protocol.

    Returns
    -------
    DataFrame
        ``Baseline``, ``Top %`` (and ``Dataset`` when both inputs have it), then for each value V of
        :data:`AUDIT_VALUES` present in both inputs: ``V (published, LEAKS TEST DATA)``, ``V (clean)``
        and ``V (published − clean)``; and ``Note``, which says when a row exists under one protocol
        only (its other columns are NaN).
    """
    keys = [k for k in _KEYS if k in default_perf.columns and k in seed_compat_perf.columns]
    values = [v for v in AUDIT_VALUES if v in default_perf.columns and v in seed_compat_perf.columns]
    pub = seed_compat_perf[keys + values].rename(columns={v: f"{v} ({PUBLISHED})" for v in values})
    clean = default_perf[keys + values].rename(columns={v: f"{v} ({CLEAN})" for v in values})
    table = pub.merge(clean, on=keys, how="outer", indicator=True, validate="one_to_one")
    for v in values:
        table[f"{v} (published − clean)"] = table[f"{v} ({PUBLISHED})"] - table[f"{v} ({CLEAN})"]
    note = {"both": "", "left_only": "only under seed_compat (published protocol)", "right_only": "only under the default protocol"}
    table["Note"] = table.pop("_merge").map(note).astype(str)
    stand_in = _stand_ins(default_perf, seed_compat_perf, keys)
    if stand_in is not None:
        table = table.merge(stand_in, on=keys, how="left")
        table[STAND_IN] = table[STAND_IN].fillna("")
    ordered = keys + [f"{v} ({s})" for v in values for s in (PUBLISHED, CLEAN, "published − clean")] + \
        ([STAND_IN] if stand_in is not None else []) + ["Note"]
    # Top % sorts by its number (1, 5, 10), with the global rows first
    return table[ordered].sort_values(keys, key=_sort_key, kind="stable").reset_index(drop=True)


STAND_IN = "Synthetic Stand-in"


def _stand_ins(default_perf: pd.DataFrame, seed_compat_perf: pd.DataFrame, keys: list[str]) -> pd.DataFrame | None:
    """Per row key, the synthetic stand-in parts of either protocol's embeddings (``""`` when real)."""
    parts = [t[keys + [STAND_IN]] for t in (default_perf, seed_compat_perf) if STAND_IN in t.columns]
    if not parts:
        return None
    both = pd.concat(parts, ignore_index=True)
    both[STAND_IN] = both[STAND_IN].fillna("").astype(str)
    return both.groupby(keys, sort=False)[STAND_IN].agg(lambda v: max(v, key=len)).reset_index()


def _sort_key(column: pd.Series) -> pd.Series:
    if column.name != "Top %":
        return column
    return column.map(_pct_number)


def _pct_number(value: object) -> float:
    text = str(value).strip().rstrip("%")
    try:
        return float(text)
    except ValueError:
        return float("-inf")


def audit_markdown(table: pd.DataFrame, dataset: str, synthetic: bool = False,
                   settings: Mapping[str, Any] | None = None) -> str:
    """The audit table as Markdown, with a banner that the published columns leak test data (and, for a synthetic
    dataset, that it is one; with ``settings``, the run's settings)."""
    banner = (
        f"**WARNING: every `({PUBLISHED})` column comes from protocol {protocol_label('seed_compat')}. "
        "Those numbers are shown only to audit the published tables; they are not valid estimates of "
        "prediction performance.**\n\n"
        f"`(clean)`: protocol {protocol_label('default')}. `(published − clean)`: the difference, i.e. how much "
        "of the published number comes from the protocol's leak and its other differences (SPEC section 9)."
    )
    note = run_note(banner, [dataset] if synthetic else [], settings, "default")
    rename = {c: GLOBAL_HEADER[1] + c[len(GLOBAL_HEADER[0]):] for c in table.columns if c.startswith(GLOBAL_HEADER[0])}
    return to_markdown(table, title=f"Leakage audit ({dataset})", note=note, rename=rename)
