"""lsftbench: linear perturbation-response models under local similarity-filtered training (LSFT).

All math of the Snakemake pipeline lives here; ``workflow/scripts/*.py`` only adapt a rule's
``snakemake.input/params/output`` to one call into it. Definitions follow ``docs/SPEC.md``.

The subpackages follow the DAG, each importing only from those listed before it::

    io, labels, formats   ground floor: atomic writes, names, external file layouts
    pipeline              Snakemake-facing helpers: config checks and look-ups, a job's logging
    data                  reading, validating, splitting and pseudobulking raw files; everything synthetic
    embeddings            gene embeddings A and perturbation embeddings B of every baseline
    model                 the ridge fits: global, LSFT, the seed_compat protocol, external predictions
    evaluation            numbers about predictions: metrics, statistics, progress bar, noise ceiling
    report                what a reader sees: tables, figures, the run index, the leakage audit

``docs/architecture.md`` draws the packages beside the DAG's rules.
"""

__version__ = "0.1.0"
