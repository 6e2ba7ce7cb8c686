"""Checks and look-ups on the validated pipeline config that the JSON schema cannot express.

Used by ``rules/common.smk``; kept here so it is importable and tested.
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..specs import PROTOCOLS, TABLE_TYPES, uses_training_pca

__all__ = [
    "ConfigError",
    "PROTOCOLS",
    "check_config",
    "benchmarked_datasets",
    "baselines_for",
    "skipped_baselines",
    "has_double_perturbations",
    "DOUBLES_PRESETS",
    "DOUBLES_GEARS",
    "pct_label",
    "results_dir",
    "split_seeds",
    "seeded_spec",
    "uses_training_pca",
    "models_for",
    "model_file",
    "model_options",
    "MODEL_READ_OPTIONS",
]

#: The protocols a run can produce; each lives under its own path (``{results}/{dataset}/{protocol}/...``).
DEFAULT_CONFIGFILE = Path("config") / "config.yaml"


class ConfigError(ValueError):
    """The configuration is inconsistent; the message says which key and why."""


def pct_label(pct: float) -> str:
    """File-name label of a top-K %: ``1``, ``5``, ``10``, ``0.5``."""
    return str(int(pct)) if float(pct).is_integer() else repr(float(pct))


def results_dir(config: dict[str, Any], user_configfiles: list[str] | None = None) -> str:
    """The run's output root.

    ``results_dir`` when the config sets it; otherwise ``results`` for ``config/config.yaml`` and
    ``results-<name>`` for a config passed as ``--configfile <name>.yaml``, so two configs never write
    into the same tables.
    """
    if config.get("results_dir"):
        return str(config["results_dir"])
    user = [Path(f) for f in user_configfiles or []]
    user = [f for f in user if os.path.abspath(f) != os.path.abspath(DEFAULT_CONFIGFILE)]
    return f"results-{user[-1].stem}" if user else "results"


def split_seeds(config: dict[str, Any]) -> list[int]:
    """The split seeds of the run (``split.seeds``), in config order."""
    return [int(s) for s in config["split"]["seeds"]]


def seeded_spec(spec: dict[str, Any], split_seed: int) -> dict[str, Any]:
    """A baseline spec whose random embeddings draw anew for each split seed.

    A ``random`` part's seed becomes ``SeedSequence([seed, split_seed])``'s first word, so the draws
    of split seed 1 and 2 are independent and each is reproducible from the config.
    """
    spec = copy.deepcopy(spec)
    for side in ("gene", "pert"):
        part = spec.get(side)
        if part and part.get("type") == "random":
            entropy = [int(part.get("seed", 1)), int(split_seed)]
            part["seed"] = int(np.random.SeedSequence(entropy).generate_state(1)[0])
    return spec


def benchmarked_datasets(config: dict[str, Any]) -> list[str]:
    """Datasets with ``benchmark: true`` (the default)."""
    return [name for name, ds in config["datasets"].items() if ds.get("benchmark", True)]


def _pert_source(spec: dict[str, Any]) -> str | None:
    pert = spec.get("pert", {})
    return pert.get("dataset") if pert.get("type") == "dataset_pca" else None


#: Synthetic presets (:data:`lsftbench.data.synthetic.presets.PRESETS`) and GEARS datasets with double perturbations.
DOUBLES_PRESETS = frozenset({"norman"})
DOUBLES_GEARS = frozenset({"norman"})


@functools.lru_cache(maxsize=64)
def _file_has_doubles(path: str, stamp: tuple[int, int]) -> bool | None:
    """Whether a GEARS h5ad's ``obs["condition"]`` categories hold a double ``A+B`` (read with h5py, without loading
    the file); ``None`` when that cannot be told cheaply (no such file, not categorical, unreadable)."""
    import h5py  # noqa: PLC0415

    try:
        with h5py.File(path, "r") as f:
            column = f["obs"]["condition"]
            if not isinstance(column, h5py.Group) or "categories" not in column:
                return None
            names = [c.decode() if isinstance(c, bytes) else str(c) for c in column["categories"][...]]
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return any(len([p for p in name.split("+") if p != "ctrl"]) == 2 for name in names)


def has_double_perturbations(config: dict[str, Any], dataset: str) -> bool | None:
    """Whether ``dataset`` has double perturbations: from its synthetic preset or GEARS name, or from the
    categories of a local file; ``None`` when it cannot be told before the run (a local file not there yet)."""
    ds = config["datasets"][dataset]
    if ds["source"] == "synthetic":
        return ds.get("preset", dataset) in DOUBLES_PRESETS
    if ds["source"] == "gears":
        return ds.get("gears_name", dataset) in DOUBLES_GEARS
    path = str(ds.get("path", ""))
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _file_has_doubles(path, (st.st_mtime_ns, st.st_size))


def skipped_baselines(config: dict[str, Any], dataset: str, protocol: str | None = None) -> dict[str, str]:
    """Baselines not run on ``dataset``, with the reason.

    A ``dataset_pca`` perturbation embedding whose source is the dataset itself is fitted on the
    training conditions only, so no test perturbation has a (non-leaking) embedding: the baseline
    has nothing to predict there and is listed as skipped instead. The ``additive`` model predicts double
    perturbations only (SPEC 10): it is skipped on a dataset without them, and under ``seed_compat``.
    """
    protocol = protocol or config.get("protocol", "default")
    additive = [name for name, spec in config["baselines"].items() if spec.get("model", "ridge") == "additive"]
    if protocol == "seed_compat":
        skipped = {
            name: "cross-dataset perturbation embeddings are not part of the seed_compat reproduction"
            for name, spec in config["baselines"].items()
            if _pert_source(spec) is not None
        }
        skipped.update({name: "the additive baseline is not part of the seed_compat reproduction" for name in additive})
        return skipped
    skipped = {
        name: f"its perturbation embedding comes from {dataset} itself, so test perturbations have no non-leaking embedding"
        for name, spec in config["baselines"].items()
        if _pert_source(spec) == dataset
    }
    if additive and has_double_perturbations(config, dataset) is False:
        skipped.update({name: f"the additive baseline predicts double perturbations, and {dataset} has none"
                        for name in additive})
    return skipped


def baselines_for(config: dict[str, Any], dataset: str, protocol: str | None = None) -> list[str]:
    """Baselines run on ``dataset`` under ``protocol`` (default: the config's), in config order."""
    skipped = skipped_baselines(config, dataset, protocol)
    return [name for name in config["baselines"] if name not in skipped]


def gene_subset_baselines(config: dict[str, Any], dataset: str, protocol: str | None = None) -> list[str]:
    """The baselines run on ``dataset`` whose gene embedding is a gene table: they may predict only some of the
    measured genes, so the genes every compared method predicts (SPEC 7, one gene set per comparison) depend on
    their embeddings and on nothing else of the config."""
    return [
        name for name in baselines_for(config, dataset, protocol)
        if config["baselines"][name].get("model", "ridge") == "ridge"
        and (config["baselines"][name].get("gene") or {}).get("type") in TABLE_TYPES
    ]


def models_for(config: dict[str, Any], dataset: str, protocol: str | None = None) -> list[str]:
    """The models of one's own evaluated on ``dataset`` (none under the ``seed_compat`` protocol, whose split
    differs from the one the models were given), in config order."""
    if (protocol or config.get("protocol", "default")) != "default":
        return []
    models = config.get("models") or {}
    return [name for name, spec in models.items() if spec.get("datasets") is None or dataset in spec["datasets"]]


#: How a model's file is read (SPEC 7.3), each with its default: what ``models.<name>`` may set beside path and
#: quantity, and ``models.<name>.datasets.<dataset>`` may override.
MODEL_READ_OPTIONS = {"scale": "log", "condition_column": None, "control_label": None, "cell_level": "auto"}


def model_options(config: dict[str, Any], model: str, dataset: str, seed: int) -> dict[str, Any]:
    """How ``model``'s predictions for one (dataset, split seed) are read: ``path`` (its template filled in),
    ``quantity`` and :data:`MODEL_READ_OPTIONS`, each from the dataset's overrides, else the model's, else the
    default."""
    spec = config["models"][model]
    override = (spec.get("datasets") or {}).get(dataset) or {}
    options = {key: override.get(key, spec.get(key, default)) for key, default in MODEL_READ_OPTIONS.items()}
    template = override.get("path", spec["path"])
    return {"path": template.format(dataset=dataset, seed=seed), "quantity": override.get("quantity", spec["quantity"]),
            **options}


def model_file(config: dict[str, Any], model: str, dataset: str, seed: int) -> tuple[str, str]:
    """The predictions file of ``model`` for one (dataset, split seed) and its quantity (``expression``/``delta``)."""
    options = model_options(config, model, dataset, seed)
    return options["path"], options["quantity"]


def _check_models(config: dict[str, Any]) -> list[str]:
    """Problems of ``models:`` the schema cannot see: names, datasets, placeholders of the path templates."""
    problems = []
    datasets = benchmarked_datasets(config)
    seeds = config.get("split", {}).get("seeds", [1])
    for name, spec in (config.get("models") or {}).items():
        if name in config["baselines"]:
            problems.append(f"models.{name}: a baseline has the same name; give the model another one")
        chosen = list(spec.get("datasets") or datasets)
        unknown = [d for d in chosen if d not in config["datasets"]]
        if unknown:
            problems.append(f"models.{name}.datasets: {unknown} are not configured datasets")
        for dataset in chosen:
            override = (spec.get("datasets") or {}).get(dataset) or {}
            template = override.get("path", spec["path"])
            where = f"models.{name}" + (".datasets." + dataset if "path" in override else "") + ".path"
            try:
                template.format(dataset=dataset, seed=0)
            except (KeyError, IndexError, ValueError) as err:
                problems.append(f"{where}: {template!r} is not a path template with {{dataset}} and {{seed}} ({err})")
                continue
            if len(seeds) > 1 and "{seed}" not in template:
                problems.append(f"{where}: {template!r} has no {{seed}} placeholder, but split.seeds has {len(seeds)} "
                                "seeds: each split needs the predictions of a model trained on its own training set")
            options = model_options(config, name, dataset, 0)
            if options["scale"] == "counts" and options["quantity"] != "expression":
                problems.append(f"models.{name}" + (f".datasets.{dataset}" if override else "") + ": scale: counts is "
                                "for predicted counts per cell, which are expression: set quantity: expression")
            if len(chosen) > 1 and "{dataset}" not in template and "path" not in override:
                problems.append(f"{where}: {template!r} has no {{dataset}} placeholder, but the model is evaluated on "
                                f"{len(chosen)} datasets (add it, or give each dataset its path under datasets:)")
    return problems


def check_config(config: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` for cross-key problems the schema cannot see."""
    problems = []
    if "seed" in config.get("split", {}):
        problems.append("split.seed: replaced by split.seeds, a list of split seeds (e.g. split: {seeds: [1, 2]})")
    if "mode_collapse_margin" in config.get("metrics", {}):
        problems.append("metrics.mode_collapse_margin: replaced by metrics.mode_collapse_spread (a spread ratio below "
                        "it flags mode collapse; default 0.1, SPEC 7)")
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
        if model == "additive" and spec.get("pert") is None:
            problems.append(f"baselines.{name}: the additive baseline needs a 'pert' embedding to find its kNN neighbours")
    problems += _check_models(config)
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(problems))
