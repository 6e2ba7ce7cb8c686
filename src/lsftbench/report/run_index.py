"""The run index: a Markdown table of contents of one protocol's tables and figures."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["run_index_markdown"]


def run_index_markdown(
    protocol: str, results: str, datasets: Sequence[str], seeds: Sequence[int], top_pcts: Sequence[str], files: Sequence[str]
) -> str:
    """List every file of the run (paths relative to ``results``), grouped by dataset."""
    from .tables import protocol_label

    lines = [
        f"# LSFT benchmark: protocol `{protocol}`",
        "",
        f"Protocol: {protocol_label(protocol)}",
        "",
        f"Datasets: {', '.join(datasets)}; split seeds: {', '.join(map(str, seeds))}; "
        f"top K %: {', '.join(top_pcts)}.",
        "Tables at the top of each dataset's folder are pooled over the split seeds (mean of per-seed means,",
        "SD across seeds) on the common test set; `seed<N>/` holds each seed's own tables.",
        "",
    ]
    groups: dict[str, list[str]] = {}
    for path in files:
        rel = os.path.relpath(path, results)
        parts = Path(rel).parts
        key = next((d for d in datasets if d in parts), "all datasets")
        groups.setdefault(key, []).append(rel)
    for key in [*datasets, "all datasets"]:
        if key in groups:
            lines += [f"## {key}", ""] + [f"- [`{rel}`]({os.path.relpath(os.path.join(results, rel), os.path.join(results, 'tables', protocol))})" for rel in sorted(groups[key])] + [""]
    return "\n".join(lines)
