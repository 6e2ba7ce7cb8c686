"""Rules synthetic_*: stand-ins for scGPT / scFoundation checkpoints and the GO graph.

Their genes are the synthetic gene pool (10 % left out of the pretrained vocabularies, as real
vocabularies miss some genes) and they carry the synthetic data's true latent structure plus noise.
"""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

import numpy as np

from lsftbench.go_graph import write_synthetic_go_graph
from lsftbench.pretrained import write_synthetic_scfoundation_checkpoint, write_synthetic_scgpt_checkpoint
from lsftbench.smk import setup_logging
from lsftbench.synthetic import gene_pool, latent_loadings

log = setup_logging(snakemake)  # noqa: F821
p, out = snakemake.params, snakemake.output  # noqa: F821
rng = np.random.default_rng(p.seed)
pool = gene_pool()
vocabulary = pool[np.sort(rng.choice(len(pool), int(0.9 * len(pool)), replace=False))]
signal = latent_loadings(8)
if p.kind == "scgpt":
    write_synthetic_scgpt_checkpoint(
        str(out.model).rsplit("/", 1)[0], list(vocabulary), dim=64, seed=p.seed, signal=signal
    )
elif p.kind == "scfoundation":
    write_synthetic_scfoundation_checkpoint(
        out.model, out.gene_list, list(vocabulary), dim=48, seed=p.seed + 1, signal=signal
    )
else:
    write_synthetic_go_graph(out.csv, list(pool), seed=p.seed + 2, signal=signal)
log.info("wrote synthetic %s stand-in: %s", p.kind, list(out))
