"""Conda envs pinned per rule: every rule declares one, and each pins the same versions as pip."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from workflow_utils import REPO

CONDA_TO_PIP = {"pytorch": "torch"}


def pip_pins() -> dict[str, str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for dep in deps:
        name, sep, version = dep.partition("==")
        assert sep, f"pyproject dependency {dep!r} is not pinned exactly"
        pins[name.strip().lower()] = version.strip()
    return pins


ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))


def test_every_rule_declares_a_conda_env():
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            name = block.split(":", 1)[0]
            assert re.search(r"^\s+conda:\s*\n\s+\"\.\./envs/\w+\.yaml\"", block, flags=re.M), f"rule {name} in {smk.name}"
            env = re.search(r"\"\.\./envs/(\w+\.yaml)\"", block).group(1)
            assert (REPO / "envs" / env).exists(), f"rule {name}: envs/{env} missing"


@pytest.mark.parametrize("env", ENV_FILES, ids=[e.name for e in ENV_FILES])
def test_env_pins_exact_versions_equal_to_pip(env):
    pins = pip_pins()
    spec = yaml.safe_load(env.read_text())
    assert spec["channels"][0] == "conda-forge"
    for dep in spec["dependencies"]:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)=([0-9][0-9A-Za-z.]*)", dep)
        assert m, f"{env.name}: {dep!r} is not an exact pin"
        name, version = m.group(1).lower(), m.group(2)
        if name == "python":
            assert version == "3.11"
            continue
        pip_name = CONDA_TO_PIP.get(name, name)
        assert pip_name in pins, f"{env.name}: {name} is not a pip dependency in pyproject.toml"
        assert pins[pip_name] == version, f"{env.name}: {name}={version} but pyproject pins {pins[pip_name]}"


@pytest.mark.parametrize("env", ENV_FILES, ids=[e.name for e in ENV_FILES])
def test_env_installs_the_package_after_deployment(env):
    """Snakemake runs ``envs/<env>.post-deploy.sh`` in each new conda env; it installs this repository's package
    from ``LSFTBENCH_ROOT``, which ``rules/common.smk`` sets to the workflow's directory."""
    script = env.with_suffix(".post-deploy.sh")
    assert script.exists(), f"{script.name} missing: --sdm conda jobs could not import lsftbench"
    assert script.read_text() == (REPO / "envs" / "data.post-deploy.sh").read_text()
    assert 'os.environ.setdefault("LSFTBENCH_ROOT", str(workflow.basedir))' in (REPO / "rules" / "common.smk").read_text()


def test_post_deploy_script_makes_the_package_importable_in_a_fresh_env(tmp_path):
    """The post-deploy script, run in a new environment with nothing but Python (a venv standing in for a
    conda env: this machine has no conda), makes ``lsftbench`` importable there from this repository."""
    import os
    import subprocess
    import sys
    import venv

    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    run_env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "LSFTBENCH_ROOT": str(REPO),
               "CONDA_PREFIX": str(env_dir)}
    run_env.pop("PYTHONPATH", None)
    subprocess.run(["bash", str(REPO / "envs" / "model.post-deploy.sh")], env=run_env, check=True, capture_output=True,
                   cwd=tmp_path)
    probe = subprocess.run(
        [str(bin_dir / "python"), "-c", "import lsftbench.pipeline.job as j, lsftbench; print(lsftbench.__file__)"],
        env=run_env, cwd=tmp_path, capture_output=True, text=True, check=True,
    )
    assert probe.stdout.strip() == str(REPO / "src" / "lsftbench" / "__init__.py")
    assert sys.executable != str(bin_dir / "python")
