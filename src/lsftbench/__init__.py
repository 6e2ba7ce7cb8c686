"""lsftbench: linear perturbation-response models under local similarity-filtered training (LSFT).

All math of the Snakemake pipeline lives here; ``workflow/scripts/*.py`` are thin adapters.
Definitions follow ``docs/SPEC.md`` of the repository.
"""

__version__ = "0.1.0"
