"""Checks and look-ups on the validated pipeline config that the JSON schema cannot express.

Used by ``rules/common.smk``; kept here so it is importable and tested.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConfigError", "check_config", "benchmarked_datasets", "baselines_for", "skipped_baselines", "pct_label"]


class ConfigError(ValueError):
    """The configuration is inconsistent; the message says which key and why."""


def pct_label(pct: float) -> str:
    """File-name label of a top-K %: ``1``, ``5``, ``10``, ``0.5``."""
    return str(int(pct)) if float(pct).is_integer() else repr(float(pct))


def benchmarked_datasets(config: dict[str, Any]) -> list[str]:
    """Datasets with ``benchmark: true`` (the default)."""
    return [name for name, ds in config["datasets"].items() if ds.get("benchmark", True)]


def _pert_source(spec: dict[str, Any]) -> str | None:
    pert = spec.get("pert", {})
    return pert.get("dataset") if pert.get("type") == "dataset_pca" else None


def skipped_baselines(config: dict[str, Any], dataset: str) -> dict[str, str]:
    """Baselines not run on ``dataset``, with the reason.

    A ``dataset_pca`` perturbation embedding whose source is the dataset itself is fitted on the
    training conditions only, so no test perturbation has a (non-leaking) embedding: the baseline
    has nothing to predict there and is listed as skipped instead.
    """
    if config.get("protocol", "default") == "seed_compat":
        return {
            name: "cross-dataset perturbation embeddings are not part of the seed_compat reproduction"
            for name, spec in config["baselines"].items()
            if _pert_source(spec) is not None
        }
    return {
        name: f"its perturbation embedding comes from {dataset} itself, so test perturbations have no non-leaking embedding"
        for name, spec in config["baselines"].items()
        if _pert_source(spec) == dataset
    }


def baselines_for(config: dict[str, Any], dataset: str) -> list[str]:
    """Baselines run on ``dataset``, in config order."""
    skipped = skipped_baselines(config, dataset)
    return [name for name in config["baselines"] if name not in skipped]


def check_config(config: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` for cross-key problems the schema cannot see."""
    problems = []
    datasets = config["datasets"]
    for name, ds in datasets.items():
        if ds["source"] == "local" and not ds.get("path"):
            problems.append(f"datasets.{name}: source 'local' needs 'path' (a perturb_processed.h5ad)")
        if ds["source"] != "synthetic" and ds.get("overrides"):
            problems.append(f"datasets.{name}: 'overrides' only applies to source 'synthetic'")
    if not benchmarked_datasets(config):
        problems.append("datasets: every dataset has benchmark: false, nothing to benchmark")
    for name, spec in config["baselines"].items():
        model = spec.get("model", "ridge")
        for side in ("gene", "pert"):
            part = spec.get(side)
            if part is None:
                if model == "ridge":
                    problems.append(f"baselines.{name}: a ridge baseline needs a '{side}' embedding")
                continue
            kind = part["type"]
            if kind == "dataset_pca":
                if side == "gene":
                    problems.append(f"baselines.{name}.gene: type dataset_pca is a perturbation embedding")
                elif part.get("dataset") not in datasets:
                    problems.append(
                        f"baselines.{name}.pert: dataset_pca source {part.get('dataset')!r} is not a configured dataset "
                        f"(add it under 'datasets', with benchmark: false if it is only a source)"
                    )
            if kind in ("table", "go_graph") and not part.get("path"):
                problems.append(f"baselines.{name}.{side}: type {kind} needs 'path'")
            if kind in ("scgpt", "scfoundation") and not part.get("checkpoint"):
                problems.append(f"baselines.{name}.{side}: type {kind} needs 'checkpoint' (a path or 'synthetic')")
            if kind == "scfoundation" and part.get("checkpoint", "synthetic") != "synthetic" and not part.get("gene_list"):
                problems.append(f"baselines.{name}.{side}: a real scfoundation checkpoint needs 'gene_list'")
            if kind == "go_graph" and side == "gene":
                problems.append(f"baselines.{name}.gene: type go_graph is a perturbation embedding")
        if model == "mean" and spec.get("pert") is None:
            problems.append(f"baselines.{name}: mean_response needs a 'pert' embedding to find LSFT neighbours")
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(problems))
