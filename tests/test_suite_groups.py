"""README's test command runs on two workers (``pytest -n 2``); the tests of one expensive fixture must share one.

``tests/conftest.py`` puts the tests of the shared Snakemake run, and those of each module-scoped fixture, in one
``xdist_group``. If an upgrade of pytest or pytest-xdist stopped honouring the groups, every worker would build each
such fixture again (the shared run alone is ~5 min): this test runs a small module on two workers and checks where
its tests went.
"""

from __future__ import annotations

import re
import subprocess
import sys

from workflow_utils import REPO


def test_a_module_fixtures_tests_run_on_one_worker():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-v", "-p", "no:cacheprovider", "tests/test_footing.py",
         "tests/test_labels.py"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ran = re.findall(r"^\[(gw\d)\] \[\s*\d+%\] PASSED (\S+)", proc.stdout, flags=re.M)
    footing = [(worker, test) for worker, test in ran if test.startswith("tests/test_footing.py")]
    assert len(footing) >= 8
    assert all(test.endswith("@test_footing") for _, test in footing), footing  # the group reached the scheduler
    assert len({worker for worker, _ in footing}) == 1, footing  # de_data and ceiling_data built once
    assert any("@" not in test for _, test in ran)  # ungrouped tests are scheduled one by one
