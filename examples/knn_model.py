"""A model of one's own for the README's worked example ("Evaluate your own model").

It knows nothing of lsftbench: it reads an exported split (``snakemake splits``) and the dataset's
cells, trains on the training perturbations only and writes its predictions where ``models:`` in
``examples/knn_model.yaml`` says.

The model: a gene's embedding is how it responds across the training perturbations (its row of the
training changes Δ, standardised); a test perturbation of gene g is predicted as the mean change of the
k training perturbations whose target genes are most similar to g (cosine). Targets that are not
measured get the mean change of all training perturbations. Predictions are mean expression
(control mean + change), one row per test perturbation, as an h5ad.

``--form cells`` and ``--form counts`` write the same predictions as cells, the way cell-eval, STATE and the
Virtual Cell Challenge files hold them: for each test perturbation (and the control) ``--cells`` cells of
Poisson counts around the predicted mean (library size 5,000), barcodes as obs names, ``obs["target_gene"]``
the perturbed gene's symbol or ``non-targeting``, symbols as var names; ``cells`` holds them log-normalised
(each cell scaled to 10,000, then log1p), ``counts`` as raw integer counts (the Challenge's form, declared
``scale: counts``). Their cell averages are close to, not equal to, the predicted means.

Usage (from the repository root, after the default run and ``snakemake splits``)::

    python examples/knn_model.py --splits results/splits --data "results/data/{dataset}/perturb_processed.h5ad" \\
        --out predictions [--form means|cells|counts]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

K = 5
#: Library size of a simulated cell (``--form cells|counts``) and the total each log-normalised cell is scaled to.
LIBRARY_SIZE, TARGET_SUM = 5000, 1e4


def training_changes(data: Path, train: list[str], genes: list[str], ctrl: np.ndarray) -> pd.DataFrame:
    """Mean expression change of each training perturbation (rows) over the genes (columns)."""
    cells = ad.read_h5ad(data)
    symbols = cells.var["gene_name"].astype(str).tolist() if "gene_name" in cells.var else list(cells.var_names)
    order = pd.Index(symbols).get_indexer(genes)
    condition = cells.obs["condition"].astype(str).to_numpy()
    rows = {}
    for cond in train:
        x = cells.X[condition == cond]
        mean = np.asarray(x.mean(axis=0)).ravel() if sp.issparse(x) else x.mean(axis=0)
        rows[cond] = mean[order] - ctrl
    return pd.DataFrame.from_dict(rows, orient="index", columns=genes)


def predict(changes: pd.DataFrame, tests: pd.DataFrame, genes: list[str]) -> np.ndarray:
    """Predicted changes of the test perturbations (rows) from the k most similar training perturbations."""
    embedding = changes.to_numpy().T  # genes × training perturbations: how each gene responds
    embedding = (embedding - embedding.mean(axis=1, keepdims=True)) / (embedding.std(axis=1, keepdims=True) + 1e-9)
    unit = embedding / (np.linalg.norm(embedding, axis=1, keepdims=True) + 1e-12)
    position = {g: i for i, g in enumerate(genes)}
    train_targets = [c.split("+")[0] if not c.startswith("ctrl+") else c.split("+")[1] for c in changes.index]
    known = np.array([t in position for t in train_targets])
    target_rows = unit[[position[t] for t, ok in zip(train_targets, known) if ok]]
    train_delta = changes.to_numpy()[known]
    fallback = changes.to_numpy().mean(axis=0)
    out = []
    for gene in tests["target_gene"].fillna(""):
        if gene not in position or not len(target_rows):
            out.append(fallback)
            continue
        similarity = target_rows @ unit[position[gene]]
        nearest = np.argsort(-similarity, kind="stable")[:K]
        out.append(train_delta[nearest].mean(axis=0))
    return np.vstack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--splits", type=Path, default=Path("results/splits"), help="the folder `snakemake splits` writes")
    ap.add_argument("--data", default="results/data/{dataset}/perturb_processed.h5ad",
                    help="each dataset's cells ({dataset} is filled in)")
    ap.add_argument("--out", type=Path, default=Path("predictions"))
    ap.add_argument("--form", choices=("means", "cells", "counts"), default="means",
                    help="one row per test perturbation (means), or cells, log-normalised (cells) or raw counts (counts)")
    ap.add_argument("--cells", type=int, default=50, help="cells per perturbation for --form cells|counts")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for split_dir in sorted(args.splits.glob("*/seed*")):
        dataset, seed = split_dir.parent.name, split_dir.name.removeprefix("seed")
        split = json.loads((split_dir / "split.json").read_text())
        genes = pd.read_csv(split_dir / "genes.csv")["gene_name"].astype(str).tolist()
        ctrl = pd.read_csv(split_dir / "control_mean.csv")["control_mean"].to_numpy()
        tests = pd.read_csv(split_dir / "test_conditions.csv", keep_default_na=False)
        train = [c for c in split["train"] if c != "ctrl"]
        changes = training_changes(Path(args.data.format(dataset=dataset)), train, genes, ctrl)
        expression = ctrl + predict(changes, tests, genes)
        if args.form == "means":
            pred = ad.AnnData(X=expression, obs=pd.DataFrame(index=tests["condition"].tolist()),
                              var=pd.DataFrame(index=genes))
            path = args.out / f"{dataset}_seed{seed}.h5ad"
        else:
            labels = ["+".join(g for g in c.split("+") if g != "ctrl") for c in tests["condition"]]  # G+ctrl -> G
            pred = as_cells(expression, ctrl, labels, genes, args.cells,
                            counts=args.form == "counts", seed=int(seed))
            path = args.out / f"{dataset}_seed{seed}_{args.form}.h5ad"
        pred.write_h5ad(path)
        print(f"{path}: {pred.n_obs} {'test perturbations' if args.form == 'means' else 'cells'} x {pred.n_vars} genes")


def as_cells(expression: np.ndarray, ctrl: np.ndarray, labels: list[str], genes: list[str], n: int, *,
             counts: bool, seed: int) -> ad.AnnData:
    """``n`` cells per predicted mean (and ``n`` control cells): Poisson counts whose expected log-normalised
    profile is about the mean; raw counts, or each cell scaled to ``TARGET_SUM`` and log1p'd."""
    rng = np.random.default_rng(seed)
    means = np.vstack([expression, ctrl[None, :]])
    labels = [*labels, "non-targeting"]
    share = np.expm1(np.clip(means, 0, None))
    share /= share.sum(axis=1, keepdims=True)
    x = rng.poisson(LIBRARY_SIZE * np.repeat(share, n, axis=0)).astype(np.float32)
    if not counts:
        x = np.log1p(x / np.maximum(x.sum(axis=1, keepdims=True), 1) * TARGET_SUM).astype(np.float32)
    obs = pd.DataFrame({"target_gene": np.repeat(labels, n)}, index=[f"cell{i:06d}" for i in range(len(x))])
    return ad.AnnData(X=sp.csr_matrix(x), obs=obs, var=pd.DataFrame(index=genes))


if __name__ == "__main__":
    main()
