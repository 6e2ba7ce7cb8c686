"""Rules synthetic_*: stand-ins for scGPT / scFoundation checkpoints and the GO graph."""

from lsftbench.data.synthetic.stand_ins import write_stand_in
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
p = snakemake.params  # noqa: F821
written = write_stand_in(p.kind, dict(snakemake.output.items()), seed=p.seed)  # noqa: F821
log.info("wrote synthetic %s stand-in: %s", p.kind, written)
