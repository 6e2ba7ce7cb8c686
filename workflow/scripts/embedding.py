"""Rule embedding: gene and perturbation embeddings of one (dataset, baseline)."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

from lsftbench.embeddings import TrainingPCA, build_embedding
from lsftbench.io import read_json
from lsftbench.problem import read_mean_expression
from lsftbench.smk import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards  # noqa: F821
spec = p.spec
if w.protocol == "seed_compat":
    import anndata as ad  # the published pseudobulk carries its protocol in .uns

    pseudobulk = ad.read_h5ad(inp.pseudobulk)
else:
    # The pseudobulk's means and names, read with h5py: importing anndata would cost more than the job's work.
    pseudobulk = read_mean_expression(inp.pseudobulk)
table_paths = {key: inp[key] for key in ("gene_table", "pert_table") if key in inp.keys()}
tables = {}
if table_paths:
    from lsftbench.gene_tables import read_baseline_tables  # pandas: only baselines with a gene table pay its import

    # A table matching (almost) none of the dataset's names is an error here, not NA/0 rows in the tables.
    tables = read_baseline_tables(
        spec, table_paths, pseudobulk.var_names, pseudobulk.obs_names, min_genes=p.min_table_genes, baseline=w.baseline
    )
if w.protocol == "seed_compat":
    from lsftbench.seed_compat import build_seed_embedding  # scikit-learn: only this protocol pays its import

    # The published code seeds its PCA and all random draws with the split seed.
    emb = build_seed_embedding(spec, pseudobulk, read_json(inp.split), p.pca_dim, seed=int(w.seed), **tables)
else:
    emb = build_embedding(
        spec,
        pseudobulk,
        read_json(inp.split),
        p.pca_dim,
        dataset=w.dataset,
        source_pseudobulk=read_mean_expression(inp.source_pseudobulk) if "source_pseudobulk" in inp.keys() else None,
        source_dataset=spec.get("pert", {}).get("dataset"),
        # the rule training_pca's file: one PCA per (dataset, split seed), not one per baseline
        training_scores=TrainingPCA.load(inp.training_pca) if "training_pca" in inp.keys() else None,
        **tables,
    )
log.info(
    "%s on %s: A %s (%s), B %s (%s); %d of %d test perturbations predictable; not predictable: %s",
    w.baseline, w.dataset, emb.A.shape, emb.gene_type, emb.B.shape, emb.pert_type,
    emb.info["n_test_predictable"], emb.info["n_test"], emb.info["not_predictable"],
)
emb.save(snakemake.output[0])  # noqa: F821
