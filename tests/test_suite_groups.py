"""README's test command runs on two workers (``pytest -n 2``); the tests of one expensive fixture must share one.

``tests/conftest.py`` puts the tests of the shared Snakemake run, and those of each module-scoped fixture, in one
``xdist_group``. If an upgrade of pytest or pytest-xdist stopped honouring the groups, every worker would build each
such fixture again (the shared run alone is ~4 min): this test runs a small module on two workers and checks where
its tests went.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap

from workflow_utils import REPO

#: A module with a module-scoped fixture (its tests must share one worker) and tests without one.
MODULE = textwrap.dedent(
    """
    import pytest

    @pytest.fixture(scope="module")
    def built_once():
        return 1

    @pytest.mark.parametrize("i", range(8))
    def test_uses_the_module_fixture(built_once, i):
        assert built_once == 1

    @pytest.mark.parametrize("i", range(8))
    def test_alone(i):
        assert i >= 0
    """
)


def test_a_module_fixtures_tests_run_on_one_worker(tmp_path):
    """The repository's own conftest.py and pytest settings (``--dist loadgroup``) on a small module in a temporary
    directory, on two workers."""
    shutil.copy(REPO / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_grouped.py").write_text(MODULE)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "--rootdir", str(tmp_path), "-n", "2",
         "-v", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ran = re.findall(r"^\[(gw\d)\] \[\s*\d+%\] PASSED (\S+)", proc.stdout, flags=re.M)
    grouped = [(worker, test) for worker, test in ran if "test_uses_the_module_fixture" in test]
    assert len(grouped) == 8, proc.stdout[-3000:]
    assert all(test.endswith("@test_grouped") for _, test in grouped), grouped  # the group reached the scheduler
    assert len({worker for worker, _ in grouped}) == 1, grouped  # the module fixture built once
    alone = [test for _, test in ran if "test_alone" in test]
    assert len(alone) == 8 and not any("@" in test for test in alone)  # ungrouped tests are scheduled one by one
