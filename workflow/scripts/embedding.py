"""Rule embedding: gene and perturbation embeddings of one (dataset, baseline)."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

import anndata as ad

from lsftbench.embeddings import build_embedding
from lsftbench.gene_tables import read_gene_table
from lsftbench.io import read_json
from lsftbench.seed_compat import build_seed_embedding
from lsftbench.smk import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards  # noqa: F821
spec = p.spec
tables = {
    f"{side}_table": read_gene_table(inp[f"{side}_table"], layout=spec[side].get("layout", "auto"))
    for side in ("gene", "pert")
    if f"{side}_table" in inp.keys()
}
if p.protocol == "seed_compat":
    emb = build_seed_embedding(spec, ad.read_h5ad(inp.pseudobulk), read_json(inp.split), p.pca_dim, **tables)
else:
    emb = build_embedding(
        spec,
        ad.read_h5ad(inp.pseudobulk),
        read_json(inp.split),
        p.pca_dim,
        dataset=w.dataset,
        source_pseudobulk=ad.read_h5ad(inp.source_pseudobulk) if "source_pseudobulk" in inp.keys() else None,
        source_dataset=spec.get("pert", {}).get("dataset"),
        **tables,
    )
log.info(
    "%s on %s: A %s (%s), B %s (%s); %d of %d test perturbations predictable; not predictable: %s",
    w.baseline, w.dataset, emb.A.shape, emb.gene_type, emb.B.shape, emb.pert_type,
    emb.info["n_test_predictable"], emb.info["n_test"], emb.info["not_predictable"],
)
emb.save(snakemake.output[0])  # noqa: F821
