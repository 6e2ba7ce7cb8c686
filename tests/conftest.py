"""Shared fixtures: small synthetic datasets with known structure."""

from __future__ import annotations

import numpy as np
import pytest

from lsftbench.data.pseudobulk import pseudobulk
from lsftbench.data.synthetic.datasets import make_dataset
from lsftbench.io import write_h5ad

#: Session fixtures too expensive to build once per xdist worker: their tests share one worker (group = fixture name).
SHARED_SESSION_FIXTURES = ("shared_run", "small_run")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the test ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group tests for ``pytest -n N --dist loadgroup`` (README's test command) so no expensive fixture is built twice.

    A test using the shared Snakemake run joins the group ``shared_run``; a test using a module-scoped fixture (a
    module's finished run, a reference computed once) joins its module's group. Every other test is scheduled alone,
    on whichever worker is free. Without ``-n`` the groups change nothing.
    """
    for item in items:
        names = getattr(item, "fixturenames", ())
        shared = [name for name in SHARED_SESSION_FIXTURES if name in names]
        if shared:
            item.add_marker(pytest.mark.xdist_group(shared[0]))
            continue
        definitions = getattr(item, "_fixtureinfo", None)  # pytest's resolved fixtures of the test (no public API)
        scopes = {d[-1].scope for d in definitions.name2fixturedefs.values() if d} if definitions else set()
        if "module" in scopes:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


SMALL = dict(n_genes=120, n_perts=60, n_unmeasured=2, cells_per_pert=12, n_ctrl=150)


@pytest.fixture(scope="session")
def small_h5ad(tmp_path_factory):
    """A small K562-like synthetic dataset on disk."""
    path = tmp_path_factory.mktemp("data") / "perturb_processed.h5ad"
    write_h5ad(make_dataset("replogle_k562_essential", seed=3, **SMALL), path)
    return path


@pytest.fixture(scope="session")
def small_pb(small_h5ad):
    return pseudobulk(small_h5ad, chunk_size=500)


@pytest.fixture(scope="session")
def small_split(small_pb):
    """A fixed random split of the small dataset's conditions (ctrl in train)."""
    conds = [c for c in small_pb.obs_names if c != "ctrl"]
    perm = list(np.random.default_rng(0).permutation(conds))
    return {"train": ["ctrl"] + perm[:40], "val": perm[40:45], "test": perm[45:]}


@pytest.fixture(scope="session")
def shared_run(tmp_path_factory):
    """One tiny ``snakemake audit`` run shared by the workflow tests (the DAG is too slow to run per test).

    The default config on tiny synthetic data, every baseline, split seeds 1 and 2, plus a user gene table in the
    paper's TSV layout; ``audit`` builds both protocols' tables and figures and the audit tables. To keep the suite
    fast it runs the two datasets the cross-dataset baselines need (K562 and RPE1: each ``dataset_pca`` baseline
    runs on the other and is left out on its source) and two K values (1 %, the one-neighbour edge, and 5 %); the
    default config's full DAG (three datasets, three K) is checked by the dry run in tests/test_workflow.py. The
    workflow is a private copy, so rerun tests may edit its scripts; every test that changes the run restores it.
    """
    import os
    import shutil
    from pathlib import Path
    from types import SimpleNamespace

    from workflow_utils import (
        REPO,
        SHARED_RUN_DATASETS,
        SHARED_RUN_TOP_PCTS,
        copy_workflow,
        snakemake,
        tiny_config,
        write_config,
        write_random_gene_table,
    )

    reuse = os.environ.get("LSFT_TEST_SHARED_RUN")  # developers: an earlier shared run's directory
    root = Path(reuse) if reuse else copy_workflow(tmp_path_factory.mktemp("shared_run"))
    if not (root / "report").exists():
        shutil.copytree(REPO / "report", root / "report")
    config = tiny_config(top_pcts=list(SHARED_RUN_TOP_PCTS))
    config["datasets"] = {name: config["datasets"][name] for name in SHARED_RUN_DATASETS}
    write_random_gene_table(root / "text_gene_emb.tsv", [f"SYN{i:04d}" for i in range(1, 61)])
    config["baselines"]["lpm_textGeneEmb"] = {
        "gene": {"type": "table", "path": "text_gene_emb.tsv"},
        "pert": {"type": "training_pca"},
    }
    write_config(root, config)
    snakemake(root, "audit", "--cores", "2", root=root)
    return SimpleNamespace(root=root, config=config, results=root / "results")


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """One small finished run (workflow_utils.small_run_config: a local dataset, three baselines, one K, one seed,
    two shards) that the fault, integrity and bad-input tests start from. Never changed: each test works on its
    own copy (workflow_utils.copy_run)."""
    from workflow_utils import small_run_config, snakemake, write_config, write_small_run_inputs

    root = tmp_path_factory.mktemp("small_run")
    write_small_run_inputs(root)
    write_config(root, small_run_config())
    snakemake(root, "--cores", "2")
    return root
