"""Markdown rendering of the tables: cell formatting (``mean [low, high]``, SD across seeds), the view each
table shows first, and the line saying which CSV holds every column.

The numbers come from :mod:`lsftbench.report.tables` (and the leaderboard, progress bar and audit modules), the
notes from :mod:`lsftbench.report.notes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .tables import CI_SUFFIXES, FAMILIES, FRACTION_COLUMNS, SD_SUFFIX

__all__ = ["GLOBAL_HEADER", "to_markdown", "performance_markdown", "render_markdown"]



# ---------------------------------------------------------------------------------------------------
# Markdown


def _is_fraction(col: str) -> bool:
    return col.startswith(tuple(FRACTION_COLUMNS.values()))


def _fmt(col: str, value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return "NA"
        if col.startswith(("p (", "q (")) or col in ("p", "q"):
            return f"{value:.3g}"
        if col.startswith("% of gap closed"):
            return f"{value:.1f}"
        return f"{100 * value:.2f}%" if _is_fraction(col) else f"{value:.4f}"
    return "" if value is None else str(value)


def _cell(row: pd.Series, col: str, columns: set[str], interval: bool = True, sd: bool = True) -> str:
    text = _fmt(col, row[col])
    if interval and col + CI_SUFFIXES[0] in columns and col + CI_SUFFIXES[1] in columns:
        low, high = _fmt(col, row[col + CI_SUFFIXES[0]]), _fmt(col, row[col + CI_SUFFIXES[1]])
        text += f" [{low}, {high}]"
    if sd and col + SD_SUFFIX in columns:
        text += f" (SD {_fmt(col, row[col + SD_SUFFIX])})"
    return text


def _shown(columns: list[str]) -> list[str]:
    """Columns that get their own Markdown column (CI and SD columns join their value's cell)."""
    present = set(columns)
    folded = {c + t for c in columns for t in (*CI_SUFFIXES, SD_SUFFIX) if c + t in present}
    return [c for c in columns if c not in folded]


def to_markdown(
    df: pd.DataFrame,
    title: str | None = None,
    note: str | None = None,
    columns: Sequence[str] | None = None,
    rename: Mapping[str, str] | None = None,
    plain: Iterable[str] = (),
    sd: bool = True,
    footer: str | None = None,
) -> str:
    """Render a table as GitHub Markdown.

    A value with ``<V> CI low``/``<V> CI high`` columns becomes one cell ``0.4120 [0.3980, 0.4270]`` (and
    `` (SD 0.0100)`` when ``<V> SD (seeds)`` exists and ``sd``); floats to 4 decimals, p/q to 3 significant
    digits, fractions as percentages, integers as integers. ``columns`` chooses (and orders) the shown
    columns (absent ones are skipped; default: all), ``plain`` those shown without interval or SD,
    ``rename`` their headers; ``footer`` follows the table. The CSV keeps every separate numeric column.
    """
    present = set(df.columns)
    cols = _shown(list(df.columns)) if columns is None else [c for c in columns if c in present]
    plain, rename = set(plain), dict(rename or {})
    lines = [f"## {title}", ""] if title else []
    if note:
        lines += [note, ""]
    lines.append("| " + " | ".join(rename.get(c, c) for c in cols) + " |")
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(_cell(row, c, present, c not in plain, sd and c not in plain) for c in cols) + " |")
    if footer:
        lines += ["", footer]
    return "\n".join(lines) + "\n"


#: Markdown headers of the performance tables: the global fit is "Global" there (the CSV keeps the LSFT
#: note's "Baseline <metric>" names, e.g. ``Baseline Pearson r``: the mapping is this prefix).
GLOBAL_HEADER = ("Baseline ", "Global ")


def _global_headers(columns: Iterable[str]) -> dict[str, str]:
    """``Baseline Pearson r`` → ``Global Pearson r`` for the value columns (not the ``Baseline`` name column)."""
    old, new = GLOBAL_HEADER
    return {c: new + c[len(old):] for c in columns if c.startswith(old)}


def _long_metrics(table: pd.DataFrame, families: Sequence[tuple[str, str]], keys: Sequence[str]) -> pd.DataFrame:
    """The performance table's further metrics in long format: one row per (keys, metric), with Local,
    Global, kNN and the improvements (each with its interval)."""
    records = []
    for _, row in table.iterrows():
        for name, key in families:
            if f"Local {name}" not in table.columns:
                continue
            rec = {k: row[k] for k in keys if k in table.columns}
            rec["Metric"] = name
            for label, col in (("Local", f"Local {name}"), ("Global", f"Baseline {name}"), ("kNN", f"kNN {name}"),
                               ("Improvement", f"Improvement ({key})"), ("kNN Improvement", f"kNN Improvement ({key})")):
                for tail in ("", *CI_SUFFIXES):
                    if col + tail in table.columns:
                        rec[label + tail] = row[col + tail]
            undefined = f"Undefined ({key})"
            if undefined in table.columns:
                rec["Undefined"] = row[undefined]
            records.append(rec)
    return pd.DataFrame.from_records(records)


def performance_markdown(table: pd.DataFrame, title: str, note: str | None, csv_name: str, top_genes: int = 1000) -> str:
    """A performance table as a reader wants it first: the LSFT note's columns with their intervals
    (the global fit named ``Global``), kNN beside them, then its other metrics in long format; every
    column (SDs across seeds, p-values, counts) is in the CSV."""
    r, l2 = ("Pearson r", "r"), ("L2", "L2")
    main = [c for c in ("Dataset", "Protocol", "Subgroup") if c in table.columns] + ["Baseline", "Top %"]
    for name, key in (r, l2):
        main += [f"Local {name}", f"Baseline {name}", f"kNN {name}", f"Improvement ({key})"]
    main += ["Train Size", "Mean Similarity", "q (LSFT vs global, r)", "Test Perturbations (per seed)", "Mode Collapse",
             "Synthetic Stand-in"]
    footer = (f"Every column — the SD across seeds, kNN improvements, p- and q-values, counts — is in `{csv_name}`; "
              "there, the global fit's columns keep the LSFT note's names (`Baseline Pearson r` = Global Pearson r).")
    text = to_markdown(table, title, note, columns=main, rename=_global_headers(main), sd=False, footer=footer)
    families = [f.labels(top_genes) for f in FAMILIES if f.table == "performance" and f.name not in ("pearson_r", "l2")]
    families = [(name, key) for name, key in families if f"Local {name}" in table.columns]
    keys = [c for c in ("Dataset", "Protocol", "Subgroup", "Baseline", "Top %") if c in table.columns]
    more = _long_metrics(table, families, keys)
    if len(more):
        text += "\n" + to_markdown(
            more, "More metrics", "The same rows' other metrics (means with their intervals): centred Pearson r, "
            "MAE, the L1 discrimination score, the PerturBench ranks, and the top-gene metrics where shown.",
            sd=False,
        )
    return text


#: The columns of a progress-bar table's Markdown (the bounds' own means and the SDs are in the CSV).
_PROGRESS_VIEW = ("Protocol", "Baseline", "Top %", "Method", "Metric", "Score", "WAP", "WAP method", "BAP", "BAP method",
                  "% of gap closed", "Seeds", "Synthetic Stand-in")
#: The columns of a leaderboard's Markdown (every metric is in the CSV).
_LEADERBOARD_VIEW = ("Protocol", "Position", "Method", "Kind", "Pearson r", "% of gap closed (Pearson r)", "L2", "MAE",
                     "Discrimination (L1)", "Best linear method", "q (vs best linear (Pearson r))", "Mode Collapse", "Note")


def render_markdown(name: str, table: pd.DataFrame, title: str, note: str | None, *, top_genes: int = 1000,
                    primary: str = "Pearson r") -> str:
    """The Markdown of table ``name`` (e.g. ``lsft_performance``): the view a reader wants first, with a line
    saying which CSV holds every column."""
    csv_name = f"{name}.csv"
    if name in ("lsft_performance", "lsft_performance_per_baseline", "lsft_performance_by_subgroup", "combined"):
        return performance_markdown(table, title, note, csv_name, top_genes)
    by_subgroup = name.endswith("_by_subgroup")  # the same view after a Subgroup column
    lead = ("Subgroup",) if by_subgroup else ()
    if name in ("progress_bar", "progress_bar_by_subgroup"):
        return to_markdown(table, title, note, columns=(*lead, *_PROGRESS_VIEW), plain=(*lead, *_PROGRESS_VIEW),
                           footer=f"The SD across seeds and every bound's own mean are in `{csv_name}`.")
    if name in ("leaderboard", "leaderboard_by_subgroup"):
        view = [*lead, *(c.replace("Pearson r", primary) if primary != "Pearson r" and "Pearson r" in c else c
                         for c in _LEADERBOARD_VIEW)]
        if primary not in ("Pearson r", "L2", "MAE", "Discrimination (L1)"):
            view.insert(view.index("L2"), "Pearson r")
        view.insert(view.index("Best linear method"), f"vs best linear ({primary})")
        if not by_subgroup:  # one reference for the table: named below it
            view.remove("Best linear method")
        plain = [c for c in view if c not in (primary, f"vs best linear ({primary})")]
        best = str(table["Best linear method"].iloc[0]) if "Best linear method" in table and len(table) else "none"
        reference = ("The reference of `vs best linear` is each subgroup's best linear method (`Best linear method`)."
                     if by_subgroup else f"Best linear method (the reference of `vs best linear`): {best}.")
        return to_markdown(table, title, note, columns=view, plain=plain, sd=False,
                           footer=f"{reference} Every metric (centred r, ranks, discrimination with L2 and cosine "
                                  f"distances, the DE metrics), its interval and the counts are in `{csv_name}`.")
    if name == "interactions":  # the method's name and kind are in its label; counts and thresholds in the CSV
        view = ["Protocol", "Method", "Direction", "TPR at FDP 0.1", "TPR at FDP 0.2", "AUC", "Prevalence", "True Pairs",
                "Pairs", "Seeds"]
        return to_markdown(table, title, note, columns=view,
                           footer=f"Baseline, kind and K apart, the pairs left out, the thresholds and the null of each "
                                  f"seed are in `{csv_name}`.")
    if name in ("de_metrics", "de_metrics_by_subgroup", "model_comparisons"):
        return to_markdown(table, title, note, sd=False, footer=f"The SD across seeds is in `{csv_name}`.")
    return to_markdown(table, title, note)
