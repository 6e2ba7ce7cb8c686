"""Rule split: GEARS simulation split, a user split JSON, or the seed_compat split."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

from lsftbench.data import cell_conditions, open_perturb_data
from lsftbench.download import go_filter_conditions
from lsftbench.io import write_json
from lsftbench.smk import setup_logging
from lsftbench.split import gears_simulation_split, read_split_json, seed_compat_split, split_summary

log = setup_logging(snakemake)  # noqa: F821
p = snakemake.params  # noqa: F821
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
elif p.protocol == "seed_compat":
    split = seed_compat_split(conditions, seed=p.seed)
    source = f"seed_compat 70/15/15 shuffle (seed {p.seed}); LEAKS TEST DATA downstream"
else:
    split = gears_simulation_split(conditions, seed=p.seed, train_gene_set_size=p.train_gene_set_size)
    source = f"GEARS simulation split (seed {p.seed}, train_gene_set_size {p.train_gene_set_size})"
log.info("%s: %s", source, split_summary(split))
write_json(split, snakemake.output[0])  # noqa: F821
