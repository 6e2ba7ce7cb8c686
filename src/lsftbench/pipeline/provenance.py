"""Provenance: which code and which settings made a table, a figure or a run index.

The settings come from the config (:func:`lsftbench.pipeline.settings.table_settings`, passed to the
report jobs as a rule param, so a change reruns them); the package version and the workflow's git commit
are read by the job itself, so that a new commit alone reruns nothing but is named by what is rewritten.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["code_version", "provenance_items", "provenance_line"]


@functools.cache
def code_version() -> str:
    """``lsftbench <version>`` and, in a git checkout of the workflow, ``(commit <short hash>[, modified])``."""
    try:
        version = metadata.version("lsftbench")
    except metadata.PackageNotFoundError:  # pragma: no cover - the package is always installed in the workflow
        version = "unknown"
    root = os.environ.get("LSFTBENCH_ROOT") or str(Path(__file__).resolve().parents[3])
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"lsftbench {version}"
    return f"lsftbench {version} (commit {commit}{', modified' if dirty else ''})"


#: How a table names a split method other than GEARS's simulation split (``split.method``).
SPLIT_LABELS = {"paper_doubles": "the paper's double-perturbation split (SPEC 10)"}


def _yes(value: Any) -> str:
    return "yes" if value else "no"


def provenance_items(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The settings a table or figure was made with, as (name, value) pairs, code version last.

    ``settings`` is :func:`lsftbench.pipeline.settings.table_settings` of the run's config.
    """
    stats, metrics, lsft = settings["statistics"], settings["metrics"], settings["lsft"]
    split = [("Split", SPLIT_LABELS.get(settings["split_method"], settings["split_method"]))] \
        if settings.get("split_method") else []
    return [
        ("Protocol", str(settings["protocol"])),
        *split,
        ("Split seeds", ", ".join(map(str, settings["split_seeds"]))),
        ("Top % (K)", ", ".join(f"{p:g}" for p in settings["top_pcts"])),
        ("Ridge penalty λ", f"{settings['ridge_penalty']:g}"),
        ("Embedding dimension d (pca_dim)", str(settings["pca_dim"])),
        ("LSFT", f"centre {lsft['center']}, refit embeddings {_yes(lsft['refit_embeddings'])}"),
        ("Statistics", f"{stats['n_resamples']} bootstrap resamples, {stats['confidence']:.0%} intervals, "
                       f"seed {stats['seed']}, paired Wilcoxon tests with BH q-values"),
        ("Metrics", f"top {metrics['top_genes']} genes, target gene {'excluded' if metrics['exclude_target_gene'] else 'kept'}, "
                    f"rank distance {metrics['rank_distance']}, mode collapse below spread {metrics['mode_collapse_spread']:g}, "
                    f"DE FDR {metrics['de_fdr']:g}"),
        ("Made with", code_version()),
    ]


def provenance_line(settings: Mapping[str, Any], index: str | None = None) -> str:
    """One line for a Markdown note or a figure footer; ``index`` names the run index listing every setting."""
    text = "Settings: " + "; ".join(f"{k} {v}" for k, v in provenance_items(settings))
    return text + (f". Every setting: `{index}`." if index else ".")
