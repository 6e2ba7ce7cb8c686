"""Shared fixtures: small synthetic datasets with known structure."""

from __future__ import annotations

import numpy as np
import pytest

from lsftbench.io import write_h5ad
from lsftbench.pseudobulk import pseudobulk
from lsftbench.synthetic import make_dataset

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
