"""lsftbench: linear perturbation-response models under local similarity-filtered training (LSFT).

All math of the Snakemake pipeline lives here; ``workflow/scripts/*.py`` are thin adapters.
Definitions follow ``SPEC.md`` (shipped in ``docs/`` of the repository).
"""

__version__ = "0.1.0"
