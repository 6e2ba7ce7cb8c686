"""The work of one ``pseudobulk`` job, as one process: read a GEARS h5ad, pseudobulk it, write the result.

Runs with the package of this checkout or, for a before/after comparison, of an older one whose
modules were still flat (``lsftbench.pseudobulk``, before the stage subpackages)::

    python benchmarks/pseudobulk_job.py k562.h5ad /tmp/pb-new.h5ad
    git worktree add /tmp/before 4f9b56b
    PYTHONPATH=/tmp/before/src python benchmarks/pseudobulk_job.py k562.h5ad /tmp/pb-old.h5ad

Time both with the same BLAS threads (``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1``, as Snakemake runs a
``threads: 1`` job), alternating the two commands over several runs. ``docs/benchmarks.md`` lists
what was measured.
"""

import sys

try:
    from lsftbench.data.pseudobulk import pseudobulk
except ImportError:  # a checkout from before the stage subpackages
    from lsftbench.pseudobulk import pseudobulk
from lsftbench.io import write_h5ad

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python benchmarks/pseudobulk_job.py <input.h5ad> <output.h5ad>")
    write_h5ad(pseudobulk(sys.argv[1]), sys.argv[2])
