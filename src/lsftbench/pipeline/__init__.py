"""Snakemake-facing helpers: start-up config checks, config look-ups, the logging of a job.

Used by ``rules/*.smk`` and ``workflow/scripts/*.py``; imports nothing above the ground floor
(``lsftbench.io``, ``lsftbench.labels``, ``lsftbench.formats``), so every stage may use it.
"""
