"""Leakage audit: the published (``seed_compat``, leaking) numbers beside the clean default protocol.

Input is two performance tables of one dataset (:func:`lsftbench.report.tables.performance_table`, typically
pooled over seeds): one under the default protocol (SPEC sections 2-6), one under ``seed_compat``
(SPEC 9.1), which reproduces the LSFT note's tables and uses each test perturbation's observed
expression for its own prediction. The difference column shows how much of a published number the
leak (and the other protocol differences, SPEC 9) accounts for.
"""

from __future__ import annotations

import pandas as pd

from .tables import protocol_label, to_markdown

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
    ordered = keys + [f"{v} ({s})" for v in values for s in (PUBLISHED, CLEAN, "published − clean")] + ["Note"]
    return table[ordered].sort_values(keys, kind="stable").reset_index(drop=True)


def audit_markdown(table: pd.DataFrame, dataset: str) -> str:
    """The audit table as Markdown, with a banner that the published columns leak test data."""
    banner = (
        f"**WARNING: every `({PUBLISHED})` column comes from protocol {protocol_label('seed_compat')}. "
        "Those numbers are shown only to audit the published tables; they are not valid estimates of "
        "prediction performance.**\n\n"
        f"`(clean)`: protocol {protocol_label('default')}. `(published − clean)`: the difference, i.e. how much "
        "of the published number comes from the protocol's leak and its other differences (SPEC section 9)."
    )
    return to_markdown(table, title=f"Leakage audit ({dataset})", note=banner)
