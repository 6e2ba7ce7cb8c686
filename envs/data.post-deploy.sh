#!/usr/bin/env bash
# Snakemake runs this once in the new conda env (--sdm conda): install this repository's lsftbench into it.
set -euo pipefail
python -m pip install --no-deps --editable "${LSFTBENCH_ROOT:?set by rules/common.smk to the workflow directory}"
