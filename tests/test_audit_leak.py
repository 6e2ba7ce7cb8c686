"""The leakage audit on data built so the answer is known (issue 13).

Both protocols run on the same cells and the same split (the seed_compat split, as the audit's
``split_file`` use would give them); only the protocol differs. With a *planted leak* — each
perturbation's response is a random mix of a few programmes, unrelated to its target gene — a clean
model cannot know a test perturbation's mix, but the published protocol projects the test
perturbation's own response onto the training PCA and recovers it: the audit must show a large
positive inflation. With *leak-free* data — every perturbation has the same response, so its own
expression carries nothing a training mean does not — the audit must show no inflation beyond noise.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from lsftbench.data.pseudobulk import pseudobulk
from lsftbench.data.split import seed_compat_split
from lsftbench.embeddings.build import build_embedding
from lsftbench.evaluation.metrics import perturbation_metrics
from lsftbench.io import write_h5ad
from lsftbench.model.global_fit import global_predictions
from lsftbench.model.problem import make_problem
from lsftbench.model.seed_compat import build_seed_embedding, published_pseudobulk, seed_global_predictions
from lsftbench.report.audit import audit_table

SELF = {"gene": {"type": "training_pca"}, "pert": {"type": "training_pca"}}
N_GENES, CELLS = 60, 3


def _write_cells(path, responses: np.ndarray, rng: np.random.Generator) -> None:
    """Cells of ctrl and of one perturbation per gene, whose mean Δ is ``responses[p]``."""
    genes = [f"G{i:02d}" for i in range(N_GENES)]
    base = rng.uniform(8.0, 10.0, N_GENES)
    conditions = ["ctrl"] + [f"{g}+ctrl" for g in genes]
    rows, names = [], []
    for k, condition in enumerate(conditions):
        mean = base if k == 0 else base + responses[k - 1]
        noise = rng.normal(0, 0.01, (CELLS, N_GENES))
        rows.append(mean + noise - noise.mean(axis=0))  # the cells' mean is exactly ``mean``
        names += [condition] * CELLS
    obs = pd.DataFrame({"condition": names, "cell_type": "K562"}, index=[f"c{i}" for i in range(len(names))])
    var = pd.DataFrame({"gene_name": genes}, index=genes)
    write_h5ad(ad.AnnData(np.vstack(rows).astype(np.float32), obs=obs, var=var), path)


def _mean_r(pb: ad.AnnData, split: dict, emb, predict) -> pd.DataFrame:
    problem = make_problem(pb, split, emb)
    pred = predict(problem, 0.1)
    rows = perturbation_metrics(pred, problem.y[:, problem.col(problem.test)], problem.top_idx)
    return pd.DataFrame({"Baseline": ["lpm_selftrained"], "Top %": ["global"], "Local Pearson r": [rows.pearson_r.mean()]})


def _audit(tmp_path, responses: np.ndarray) -> pd.DataFrame:
    path = tmp_path / "cells.h5ad"
    _write_cells(path, responses, np.random.default_rng(1))
    clean_pb, seed_pb = pseudobulk(path), published_pseudobulk(path)
    split = seed_compat_split(list(seed_pb.obs_names), seed=1)
    clean = _mean_r(clean_pb, split, build_embedding(SELF, clean_pb, split, 5, dataset="d"), global_predictions)
    published = _mean_r(seed_pb, split, build_seed_embedding(SELF, seed_pb, split, 5, seed=1), seed_global_predictions)
    return audit_table(clean, published)


def test_planted_leak_shows_a_large_positive_inflation(tmp_path):
    rng = np.random.default_rng(0)
    programmes = rng.normal(0, 1, (3, N_GENES))
    mix = rng.normal(0, 1, (N_GENES, 3))  # one random mix per perturbation, independent of its target gene
    table = _audit(tmp_path, mix @ programmes * 0.5)
    published = table["Local Pearson r (published, LEAKS TEST DATA)"].iloc[0]
    clean = table["Local Pearson r (clean)"].iloc[0]
    inflation = table["Local Pearson r (published − clean)"].iloc[0]
    assert inflation == pytest.approx(published - clean)
    assert published > 0.95 and inflation > 0.5, table.T


def test_leak_free_data_show_no_inflation_beyond_noise(tmp_path):
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 1, N_GENES)
    responses = shared + rng.normal(0, 0.05, (N_GENES, N_GENES))  # the same response for every perturbation
    table = _audit(tmp_path, responses)
    assert table["Local Pearson r (clean)"].iloc[0] > 0.95
    assert abs(table["Local Pearson r (published − clean)"].iloc[0]) < 0.02, table.T
