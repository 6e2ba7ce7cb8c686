"""The run index: a Markdown table of contents of one protocol's tables and figures."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..pipeline.provenance import code_version, provenance_items

__all__ = ["run_index_markdown"]


def run_index_markdown(
    protocol: str,
    results: str,
    datasets: Sequence[str],
    seeds: Sequence[int],
    top_pcts: Sequence[str],
    files: Sequence[str],
    *,
    synthetic: Sequence[str] = (),
    settings: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
) -> str:
    """List every file of the run (paths relative to ``results``), grouped by dataset, then every setting.

    ``synthetic`` are the datasets from the embedded generator (said at the top), ``settings`` the run's key
    settings (:func:`lsftbench.pipeline.settings.table_settings`) and ``config`` the whole validated config,
    listed as YAML with the code version that made the run.
    """
    from .notes import protocol_label, synthetic_note

    lines = [
        f"# LSFT benchmark: protocol `{protocol}`",
        "",
        f"Protocol: {protocol_label(protocol)}",
        "",
    ]
    if synthetic:
        lines += [synthetic_note(synthetic, [d for d in datasets if d not in synthetic]), ""]
    lines += [
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
    if settings is not None or config is not None:
        lines += ["## Settings", ""]
    if settings is not None:
        lines += ["| Setting | Value |", "| --- | --- |"]
        lines += [f"| {name} | {value} |" for name, value in provenance_items(settings)] + [""]
    if config is not None:
        lines += [
            f"Every setting of this run ({code_version()}), the validated config with its defaults (without the "
            "memory knobs `pseudobulk.chunk_size` and `progress_bar.max_mb`, which change no number):",
            "",
            "```yaml",
            yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False).rstrip(),
            "```",
            "",
        ]
    return "\n".join(lines)
