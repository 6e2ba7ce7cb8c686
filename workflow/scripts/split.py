"""Rule split: GEARS simulation split (or the paper's doubles split), a user split JSON, or the seed_compat split;
with the subgroup of every test condition."""

from lsftbench.data.split import check_split_size, split_summary
from lsftbench.io import write_json
from lsftbench.model.protocol import get_protocol
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards  # noqa: F821
go = (inp.gene2go, inp.essential) if "gene2go" in inp.keys() else None
result = get_protocol(w.protocol).split(
    inp.data, seed=int(w.seed), train_gene_set_size=p.train_gene_set_size, split_file=inp.split_file or None,
    go_resources=go, method=p.method,
)
for note in result.notes:
    log.info("%s", note)
for warning in result.warnings:
    log.warning("%s", warning)
log.info("%s: %s", result.source, split_summary(result.split))
check_split_size(result.split, p.min_tests, where=f"{inp.data} (split seed {w.seed})",
                 train_gene_set_size=p.train_gene_set_size)
write_json(result.document(), snakemake.output[0])  # noqa: F821
