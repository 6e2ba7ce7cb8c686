"""Helpers to run the real Snakemake workflow on small configs in a temporary directory."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TINY = {"n_genes": 60, "n_perts": 40, "n_unmeasured": 1, "cells_per_pert": 8, "n_ctrl": 60}
#: The shared run's datasets and K values (tests/conftest.py ``shared_run``): the two datasets the cross-dataset
#: baselines need, and K = 1 % (one neighbour) and 5 %.
SHARED_RUN_DATASETS = ("replogle_k562_essential", "replogle_rpe1_essential")
SHARED_RUN_TOP_PCTS = (1, 5)


def default_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def tiny_config(**changes) -> dict:
    """The default config with every synthetic dataset shrunk to a few dozen genes/perturbations."""
    config = copy.deepcopy(default_config())
    for ds in config["datasets"].values():
        if ds["source"] == "synthetic":
            ds["overrides"] = dict(TINY)
    config.update(changes)
    return config


def small_run_config() -> dict:
    """The config of the small finished run (``small_run`` in tests/conftest.py) that the fault, integrity and
    bad-input tests start from: the local dataset ``toy`` (``inputs/toy.h5ad``), a ridge baseline, the mean
    baseline and a user gene table baseline (``inputs/text_emb.tsv``), one K, one seed, two LSFT shards."""
    config = tiny_config()
    config["datasets"] = {"toy": {"source": "local", "path": "inputs/toy.h5ad"}}
    config["baselines"] = {
        "lpm_selftrained": copy.deepcopy(config["baselines"]["lpm_selftrained"]),
        "mean_response": copy.deepcopy(config["baselines"]["mean_response"]),
        "lpm_textGeneEmb": {"gene": {"type": "table", "path": "inputs/text_emb.tsv"}, "pert": {"type": "training_pca"}},
    }
    config["top_pcts"] = [10]
    config["split"] = {"seeds": [1]}
    config["lsft"]["test_chunks"] = 2
    config["statistics"] = {"n_resamples": 200}
    config["progress_bar"] = {"replicates": 4}
    return config


def write_toy_data(path: Path, seed: int = 5):
    """A tiny Adamson-like dataset (``TINY``) written to ``path`` as a user's local h5ad; returns the AnnData."""
    from lsftbench.data.synthetic.datasets import make_dataset
    from lsftbench.io import write_h5ad

    adata = make_dataset("adamson", seed=seed, **TINY)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_h5ad(adata, path)
    return adata


def write_random_gene_table(path: Path, genes: list[str]) -> None:
    """A random 5-dimensional gene table in the paper's TSV layout (one column per gene, one row per dimension)."""
    import numpy as np
    import pandas as pd

    table = pd.DataFrame(np.random.default_rng(0).normal(size=(5, len(genes))), columns=genes)
    table.to_csv(path, sep="\t", index=False)


def write_small_run_inputs(workdir: Path) -> None:
    """The small run's input files: the toy dataset and a random gene table of its genes."""
    adata = write_toy_data(workdir / "inputs" / "toy.h5ad")
    write_random_gene_table(workdir / "inputs" / "text_emb.tsv", list(adata.var["gene_name"]))


def copy_run(run: Path, dest: Path) -> Path:
    """A copy of a finished run (modification times kept: new inodes and change times, as ``cp -a``)."""
    shutil.copytree(run, dest, symlinks=True)
    return dest


def quick_start_command(number: int) -> str:
    """Command ``number`` of the README's quick start (the line after its ``# <number>.`` comment)."""
    lines = (REPO / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"# {number}."))
    return lines[start + 1].strip()


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow's own files (Snakefile, rules, scripts, schema, envs, package, profiles) to ``dest``.

    ``profiles/`` comes along because Snakemake applies ``profiles/default`` (beside the Snakefile) to every run, as
    it does in a user's clone: the copy runs with the same scheduler and ``rerun-incomplete`` as the repository.
    """
    shutil.copy(REPO / "Snakefile", dest / "Snakefile")
    for name in ("rules", "workflow", "envs", "src", "report", "profiles"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (dest / "config").mkdir(exist_ok=True)
    shutil.copy(REPO / "config" / "schema.yaml", dest / "config" / "schema.yaml")
    return dest


def snakemake(
    workdir: Path, *args: str, check: bool = True, env: dict | None = None, root: Path = REPO
) -> subprocess.CompletedProcess:
    """Run ``root``'s Snakefile with ``workdir`` as working directory (its config/config.yaml)."""
    cmd = [SNAKEMAKE, "-s", str(root / "Snakefile"), "--directory", str(workdir), *args]
    run_env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run."""
    counts = {}
    block = dry_run_output.split("Job stats:")[-1]
    for line in block.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def planned_jobs(workdir: Path, *args: str, root: Path = REPO) -> dict[str, int]:
    """Jobs a dry run would execute (empty when nothing is to be done)."""
    proc = snakemake(workdir, "-n", "--cores", "1", *args, root=root)
    out = proc.stdout + proc.stderr
    return {} if "Nothing to be done" in out else job_counts(out)
