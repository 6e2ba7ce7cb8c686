"""The Snakefile and rules/ are snakefmt-clean, as the Snakemake workflow catalog checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from workflow_utils import REPO

SNAKEFMT = str(Path(sys.executable).with_name("snakefmt"))


def test_snakefile_and_rules_are_snakefmt_clean():
    # From the repository root, so a [tool.snakefmt] section in pyproject.toml would apply.
    files = ["Snakefile", *sorted(str(p.relative_to(REPO)) for p in (REPO / "rules").glob("*.smk"))]
    proc = subprocess.run([SNAKEFMT, "--check", *files], capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        diff = subprocess.run([SNAKEFMT, "--diff", *files], capture_output=True, text=True, cwd=REPO)
        raise AssertionError(
            f"snakefmt would reformat (run `.venv/bin/snakefmt Snakefile rules/`):\n{proc.stderr}\n{diff.stdout[-6000:]}"
        )
