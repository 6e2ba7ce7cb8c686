"""Rule split: GEARS simulation split, a user split JSON, or the seed_compat split."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

from lsftbench.data import cell_conditions, open_perturb_data
from lsftbench.download import go_filter_conditions
from lsftbench.io import write_json
from lsftbench.smk import setup_logging
from lsftbench.split import gears_simulation_split, read_split_json, seed_compat_split, split_summary

log = setup_logging(snakemake)  # noqa: F821
p, w = snakemake.params, snakemake.wildcards  # noqa: F821
seed = int(w.seed)
adata = open_perturb_data(snakemake.input.data)  # noqa: F821
conditions = list(cell_conditions(adata))
adata.file.close()
if "gene2go" in snakemake.input.keys():  # noqa: F821
    conditions_kept, dropped = go_filter_conditions(conditions, snakemake.input.gene2go, snakemake.input.essential)  # noqa: F821
    kept = set(conditions_kept)
    conditions = [c for c in conditions if c in kept]
    log.info("GO filter: dropped %d conditions whose genes are not all in the GO graph: %s", len(dropped), dropped)

if snakemake.input.split_file:  # noqa: F821
    split = read_split_json(snakemake.input.split_file, conditions)  # noqa: F821
    source = f"user file {snakemake.input.split_file}"  # noqa: F821
elif w.protocol == "seed_compat":
    from lsftbench.seed_compat import SPLIT_NOTE  # noqa: PLC0415 - scikit-learn: only under seed_compat

    split = seed_compat_split(conditions, seed=seed)
    source = f"seed_compat 70/15/15 shuffle (seed {seed}); LEAKS TEST DATA downstream"
    log.warning("%s", SPLIT_NOTE)
else:
    split = gears_simulation_split(conditions, seed=seed, train_gene_set_size=p.train_gene_set_size)
    source = f"GEARS simulation split (seed {seed}, train_gene_set_size {p.train_gene_set_size})"
log.info("%s: %s", source, split_summary(split))
write_json(split, snakemake.output[0])  # noqa: F821
